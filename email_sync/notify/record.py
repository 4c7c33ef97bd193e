"""Decide a segment's team notification inside the sync's decision transaction.

The message is built from the `_entered` / `_exited` temp tables of the membership diff and
written to `email_sync.notifications` (one row per segment, run and destination) in the same
transaction that records the new membership. So a notification exists exactly when its run's
changes were committed, and it is posted after the commit (`post.py`), never twice.
"""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any

import sqlalchemy as sa

from email_sync.errors import SegmentMissing
from email_sync.notify.message import member_link
from email_sync.notify.spec import NotifySpec

DDL = """
create table if not exists email_sync.notifications (
    segment text not null,
    run_id bigint not null,
    destination text not null,          -- slack | webhook
    url_env text not null,              -- the variable holding the URL; never the URL itself
    secret_env text,
    as_of date,
    payload jsonb not null,
    status text not null,               -- pending | posted | failed | rejected | unconfirmed
    attempts integer not null default 0,
    reason text,
    created_at timestamptz not null default now(),
    attempted_at timestamptz,
    posted_at timestamptz,
    primary key (segment, run_id, destination)
);
create index if not exists notifications_due on email_sync.notifications (segment, status);
"""


def ensure_notify_schema(conn: sa.Connection) -> None:
    """Create the notifications table once (a project upgraded from before it existed too)."""
    exists = conn.execute(
        sa.text("select to_regclass('email_sync.notifications') is not null")
    ).scalar_one()
    if not exists:
        conn.exec_driver_sql(DDL)


def _check_columns(present: dict[str, str], segment: str, relation: str, spec: NotifySpec) -> None:
    wanted = [*spec.show, *([spec.only.column] if spec.only else [])]
    for column in wanted:
        if column not in present:
            raise SegmentMissing(
                f"segment {segment}: notify column {column!r} is not in {relation} "
                "(add it to the segment model or remove it from notify)"
            )


def _filter_sql(spec: NotifySpec) -> tuple[str, dict[str, Any]]:
    only = spec.only
    if only is None:
        return "true", {}
    column = f's."{only.column}"'
    if not only.values:
        return f"({column})::boolean is true", {}
    if only.negate:
        return f"coalesce(({column})::text, '') <> all(:only_values)", {
            "only_values": list(only.values)
        }
    return f"({column})::text = any(:only_values)", {"only_values": list(only.values)}


def build_payload(
    conn: sa.Connection,
    segment: str,
    relation: str,
    present_columns: dict[str, str],
    spec: NotifySpec,
    as_of: date,
    dashboard_url: str | None,
) -> dict[str, Any] | None:
    """The message for this run's diff, or None when nothing the notification reports changed."""
    _check_columns(present_columns, segment, relation, spec)
    payload: dict[str, Any] = {"segment": segment, "as_of": as_of.isoformat()}
    if spec.headline:
        payload["headline"] = spec.headline
    if spec.reports("entered"):
        where, params = _filter_sql(spec)
        name = 's."name"' if "name" in present_columns else "null"
        company = 's."company_name"' if "company_name" in present_columns else "null"
        shown = "".join(f', s."{c}"::text as "{c}"' for c in spec.show)
        joined = f"from _entered as e join {relation} as s on s.member_key = e.member_key"
        count = conn.execute(
            sa.text(f"select count(*) {joined} where {where}"), params
        ).scalar_one()
        rows = conn.execute(
            sa.text(
                f"select s.developer_id, {name} as name, {company} as company{shown} "
                f"{joined} where {where} order by s.member_key limit :n"
            ),
            {**params, "n": spec.max_members},
        ).mappings()
        payload["entered"] = {
            "count": count,
            "members": [
                {
                    "developer_id": r["developer_id"],
                    "name": r["name"],
                    "company": r["company"],
                    "columns": {c: r[c] for c in spec.show},
                    "link": member_link(dashboard_url, r["developer_id"]),
                }
                for r in rows
            ],
        }
    if spec.reports("exited"):
        # Exited members are no longer in the segment table: the membership row still knows
        # who they were, not their columns, so a filter applies to entries only.
        count = conn.execute(sa.text("select count(*) from _exited")).scalar_one()
        rows = conn.execute(
            sa.text(
                "select m.developer_id from _exited as x join email_sync.segment_membership as m "
                "on m.segment = :seg and m.member_key = x.member_key "
                "order by x.member_key limit :n"
            ),
            {"seg": segment, "n": spec.max_members},
        ).mappings()
        payload["exited"] = {
            "count": count,
            "members": [
                {
                    "developer_id": r["developer_id"],
                    "link": member_link(dashboard_url, r["developer_id"]),
                }
                for r in rows
            ],
        }
    changed = sum(payload[c]["count"] for c in ("entered", "exited") if c in payload)
    return payload if changed else None


def record(
    conn: sa.Connection,
    segment: str,
    run_id: int,
    spec: NotifySpec,
    payload: dict[str, Any],
    as_of: date,
) -> list[str]:
    """One pending row per destination whose URL variable is set; returns the variables that are
    not set (nothing is recorded for those: the caller says how to turn them on)."""
    ensure_notify_schema(conn)
    missing = []
    for dest in spec.destinations:
        if not os.environ.get(dest.url_env):
            missing.append(dest.url_env)
            continue
        conn.execute(
            sa.text(
                "insert into email_sync.notifications "
                "(segment, run_id, destination, url_env, secret_env, as_of, payload, status) "
                "values (:seg, :run, :dest, :url_env, :secret_env, :as_of, "
                "cast(:payload as jsonb), 'pending') "
                "on conflict (segment, run_id, destination) do nothing"
            ),
            {
                "seg": segment,
                "run": run_id,
                "dest": dest.kind,
                "url_env": dest.url_env,
                "secret_env": dest.secret_env,
                "as_of": as_of,
                "payload": json.dumps(payload),
            },
        )
    return missing
