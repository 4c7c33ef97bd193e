"""Per campaign and step, what a day's syncs did: sent, deferred by the frequency cap, held out.

Read from the ledger for the runs of one as-of day; `onramp demo` prints it after the sync.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import sqlalchemy as sa


def steps_by_campaign(engine: sa.Engine, as_of: date) -> dict[str, dict[str, dict[int, int]]]:
    """campaign -> {"sent" | "deferred" | "held_out" -> {step: count}} for that day's runs."""
    with engine.connect() as conn:
        exists = conn.execute(sa.text("select to_regclass('email_sync.messages') is not null"))
        if not exists.scalar_one():
            return {}
        rows = conn.execute(
            sa.text(
                """
                select g.segment, g.step,
                       count(*) filter (where g.status in ('sent', 'sent_unconfirmed')) as sent,
                       count(*) filter (where g.status = 'capped') as deferred,
                       count(*) filter (where g.status = 'held_out') as held_out
                from email_sync.messages as g
                join email_sync.sync_runs as r on r.run_id = g.run_id
                where r.as_of = :as_of and g.step ~ '^[0-9]+$'
                group by g.segment, g.step
                """
            ),
            {"as_of": as_of},
        ).all()
    out: dict[str, dict[str, dict[int, int]]] = defaultdict(
        lambda: {"sent": {}, "deferred": {}, "held_out": {}}
    )
    for segment, step, sent, deferred, held_out in rows:
        for what, count in (("sent", sent), ("deferred", deferred), ("held_out", held_out)):
            if count:
                out[segment][what][int(step)] = count
    return dict(out)


def format_steps(counts: dict[int, int]) -> str:
    """`1:12 2:3` (step:count), or `-`."""
    return " ".join(f"{step}:{n}" for step, n in sorted(counts.items())) or "-"
