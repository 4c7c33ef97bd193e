"""What stops an email or a whole sync: the blast-radius breaker, invalid addresses, suppression,
marketing consent and the global frequency cap.

Each email guardrail is one set-based UPDATE over this run's `pending` ledger rows, run inside
the decision transaction, so a dry run sees exactly what a real run would decide.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from email_sync.errors import BlastRadiusExceeded
from email_sync.providers import Provider
from email_sync.render import EMAIL_RE
from email_sync.specs import SegmentSpec
from onramp.settings import Settings

INVALID = "invalid address"
# SQL twin of render.valid_email, shared by the ledger and the list mirror.
INVALID_ADDRESS_SQL = "({col} is null or length({col}) > 254 or {col} !~ :email_re)"


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
