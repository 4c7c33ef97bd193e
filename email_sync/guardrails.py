"""What stops an email or a whole sync: the entry plan (a large first sync, a renamed segment, a
changed member_key or a new day of a time-keyed segment is not a wave of new members), the
blast-radius breaker, invalid addresses, suppression, marketing consent and the global frequency
cap.

Each email guardrail is one set-based UPDATE over this run's `pending` ledger rows, run inside
the decision transaction, so a dry run sees exactly what a real run would decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from email_sync.errors import BlastRadiusExceeded
from email_sync.providers import Provider
from email_sync.render import EMAIL_RE
from email_sync.specs import SegmentSpec
from onramp.errors import OnrampError
from onramp.settings import Settings

INVALID = "invalid address"
# SQL twin of render.valid_email, shared by the ledger and the list mirror.
INVALID_ADDRESS_SQL = "({col} is null or length({col}) > 254 or {col} !~ :email_re)"


INITIAL_CHOICES = ("record", "send")
# A member key that ends in a day (`dev-1:2026-11-25`) belongs to that day: once the day is past,
# its exit is an expiry, not a member leaving (seg_rate_limited is keyed by developer and day).
DAY_SUFFIX_SQL = "{col} ~ '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$'"


@dataclass
class EntryPlan:
    """Which of this sync's entries are new members to email, and what the breaker should count.

    - `hold_all`: a first sync (also a renamed segment) of more than blast_radius_min_members
      members records them all as already in the segment and emails nobody, unless
      `initial="send"`: a new install or a rename must not mail everyone in it.
    - `rekeyed`: entries whose developer left under another member_key in this same sync, when
      there are as many as the breaker would refuse (a changed member_key): recorded, not emailed.
    - `expired`: exits of day-keyed members (`...YYYY-MM-DD` keys, or every exit when the meta
      says `time_keyed: true`) whose day is past: not counted as leaving, and as many entries are
      counted as their replacements, so a new day is not a blast (its growth still can be).
    """

    hold_all: bool = False
    rekeyed: int = 0
    rekeyed_exits: int = 0
    expired: int = 0
    notes: list[str] = field(default_factory=list)

    def breaker_counts(self, entered: int, exited: int) -> tuple[int, int]:
        """(entered, exited) as the blast-radius breaker should see them."""
        rekeyed, rekeyed_exits = (self.rekeyed, self.rekeyed_exits) if self.rekeyed else (0, 0)
        return (
            max(entered - rekeyed - self.expired, 0),
            max(exited - rekeyed_exits - self.expired, 0),
        )

    def held(self, entered: int) -> int:
        return entered if self.hold_all else self.rekeyed


def check_initial(initial: str) -> str:
    """Validate the first-sync mode (record or send) early; returns it unchanged."""
    if initial not in INITIAL_CHOICES:
        raise OnrampError(f"initial must be record or send, got {initial!r}")
    return initial


def plan_entries(
    conn: sa.Connection,
    settings: Settings,
    spec: SegmentSpec,
    as_of: date,
    entered: int,
    members: int,
    previous_active: int,
    first_sync: bool,
    initial: str,
) -> EntryPlan:
    """Read the `_entered` / `_exited` temp tables of the diff and decide (see EntryPlan)."""
    plan = EntryPlan()
    check_initial(initial)
    if first_sync:
        large = members > settings.blast_radius_min_members
        if spec.email is not None and large and initial == "record" and entered:
            plan.hold_all = True
            plan.notes.append(
                f"first sync of {spec.name}: {entered:,} members recorded as already in the "
                f"segment, none emailed (more than {settings.blast_radius_min_members:,}, "
                "ONRAMP_BLAST_RADIUS_MIN_MEMBERS); to email them on a first sync pass "
                "--initial send"
            )
        return plan
    time_keyed = bool(spec.meta.get("time_keyed", False))
    day_keyed = "true" if time_keyed else DAY_SUFFIX_SQL.format(col="x.member_key")
    params = {"seg": spec.name, "as_of": as_of.isoformat()}  # ISO days compare as text
    conn.execute(
        sa.text(
            f"""
            create temp table _left on commit drop as
            select x.member_key, m.developer_id,
                   ({day_keyed}) and (
                       {str(time_keyed).lower()}
                       or right(x.member_key, 10) < :as_of
                   ) as expired
            from _exited as x
            join email_sync.segment_membership as m
              on m.segment = :seg and m.member_key = x.member_key
            """
        ),
        params,
    )
    expired, rekeyed, rekeyed_exits = conn.execute(
        sa.text(
            """
            select
                (select count(*) from _left where expired),
                (select count(*) from _entered as e where e.developer_id in (
                    select developer_id from _left where not expired)),
                (select count(*) from _left as l where not l.expired and l.developer_id in (
                    select developer_id from _entered))
            """
        )
    ).one()
    plan.expired = expired
    size = max(previous_active, members, 1)
    if (
        initial == "record"
        and rekeyed >= settings.blast_radius_min_members
        and rekeyed > settings.blast_radius_share * size
    ):
        plan.rekeyed, plan.rekeyed_exits = rekeyed, rekeyed_exits
        plan.notes.append(
            f"{rekeyed:,} entries are developers who left under another member_key in this sync "
            "(a changed member_key): recorded, not emailed"
        )
    return plan


def drop_held_entries(conn: sa.Connection, plan: EntryPlan) -> None:
    """Take the held entries out of `_entered` after the membership was written, so no ledger
    row is made for them (they are members now; only a later entry is emailed)."""
    if plan.hold_all:
        conn.execute(sa.text("delete from _entered"))
    elif plan.rekeyed:
        conn.execute(
            sa.text(
                "delete from _entered where developer_id in "
                "(select developer_id from _left where not expired)"
            )
        )


def check_blast_radius(
    settings: Settings,
    spec: SegmentSpec,
    entered: int,
    exited: int,
    members: int,
    previous_active: int,
    first_sync: bool,
    allow_large: bool,
) -> None:
    """Refuse a change larger than blast_radius_share of the segment (and at least
    blast_radius_min_members), unless allow_large. The first sync of a segment (no prior state)
    is exempt: everything "enters" by definition, which is the expected bootstrap, not an accident.
    The share is of the larger of the previous and the current size, so emptying a segment trips
    it as surely as doubling one."""
    if allow_large or first_sync:
        return
    size = max(previous_active, members, 1)
    for what, count in (("enter", entered), ("exit", exited)):
        if (
            count >= settings.blast_radius_min_members
            and count > settings.blast_radius_share * size
        ):
            raise BlastRadiusExceeded(
                f"segment {spec.name}: {count:,} of {size:,} members would {what} "
                f"({count / size:.0%} > {settings.blast_radius_share:.0%}); refusing to sync, "
                "rerun with --allow-large if this change is expected"
            )


def reject_invalid_addresses(conn: sa.Connection, run_id: int) -> None:
    """Invalid addresses fail for good before any provider call."""
    conn.execute(
        sa.text(
            f"""
            update email_sync.messages set status = 'failed', reason = '{INVALID}',
                updated_at = now()
            where run_id = :run and status = 'pending' and {INVALID_ADDRESS_SQL.format(col="email")}
            """
        ),
        {"run": run_id, "email_re": EMAIL_RE},
    )


def refresh_suppressions(conn: sa.Connection, provider: Provider) -> None:
    """Copy the provider's suppression lists into email_sync.suppressions (the caller does it
    only when there is something to send, so a sync with no change makes no provider call)."""
    pairs = {}
    for address, reason in provider.fetch_suppressions():
        if address:
            pairs.setdefault(address.strip().lower(), reason)
    if not pairs:
        return
    conn.execute(
        sa.text(
            """
            insert into email_sync.suppressions (email, reason, source, scope)
            select e, r, :source,
                -- an unsubscribe group is about marketing; incidents still reach the address
                case when r like 'group unsubscribe%' then 'marketing' else 'all' end
            from unnest(cast(:emails as text[]), cast(:reasons as text[])) as t(e, r)
            on conflict (email) do nothing
            """
        ),
        {"emails": list(pairs), "reasons": list(pairs.values()), "source": provider.name},
    )


def suppress(conn: sa.Connection, spec: SegmentSpec, run_id: int) -> None:
    """Suppressed addresses get nothing of the suppression's scope ('all', or one kind such as
    marketing); marketing email also needs consent."""
    conn.execute(
        sa.text(
            """
            update email_sync.messages as g set status = 'suppressed',
                reason = 'suppressed: ' || s.reason, updated_at = now()
            from email_sync.suppressions as s
            where g.run_id = :run and g.status = 'pending' and s.email = g.email
              and (s.scope = 'all' or s.scope = g.kind)
            """
        ),
        {"run": run_id},
    )
    conn.execute(
        sa.text(
            f"""
            update email_sync.messages as g set status = 'suppressed',
                reason = 'no marketing consent', updated_at = now()
            where g.run_id = :run and g.status = 'pending' and g.kind = 'marketing'
              and not coalesce(
                  (select s.marketing_opt_in from {spec.relation} as s
                   where s.member_key = g.member_key),
                  (g.payload ->> 'marketing_opt_in')::boolean,
                  false)
            """
        ),
        {"run": run_id},
    )


def apply_frequency_cap(
    conn: sa.Connection, settings: Settings, run_id: int, clock: datetime
) -> None:
    """At most daily_email_cap emails per developer per UTC day and weekly_email_cap per 7 UTC
    days (today and the 6 before). Earlier decisions (sent, unconfirmed, or pending from other
    segments) count first; within this run the highest priority wins. A transaction-level lock
    serialises cap decisions across segments synced at the same time."""
    conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('onramp.email_sync.cap'))"))
    day_start = datetime.combine(clock.date(), datetime.min.time(), tzinfo=UTC)
    params: dict[str, Any] = {
        "run": run_id,
        "day_start": day_start,
        "week_start": day_start - timedelta(days=6),
        "daily": settings.daily_email_cap,
        "weekly": settings.weekly_email_cap,
    }
    conn.execute(
        sa.text(
            """
            with recent as (
                select developer_id,
                       count(*) filter (where coalesce(sent_at, created_at) >= :day_start)
                           as today,
                       count(*) as week
                from email_sync.messages
                where status in ('sent', 'sent_unconfirmed', 'pending')
                  and coalesce(sent_at, created_at) >= :week_start
                  and run_id is distinct from :run and developer_id is not null
                group by developer_id
            ),
            ranked as (
                select message_id, developer_id,
                       row_number() over (
                           partition by developer_id
                           order by priority desc, created_at, member_key
                       ) as rn
                from email_sync.messages
                where run_id = :run and status = 'pending' and not bypass_cap
                  and developer_id is not null
            )
            update email_sync.messages as g set status = 'capped',
                reason = case when r.rn + coalesce(c.today, 0) > :daily
                              then 'daily cap' else 'weekly cap' end,
                updated_at = now()
            from ranked as r
            left join recent as c on c.developer_id = r.developer_id
            where g.message_id = r.message_id
              and (r.rn + coalesce(c.today, 0) > :daily or r.rn + coalesce(c.week, 0) > :weekly)
            """
        ),
        params,
    )
