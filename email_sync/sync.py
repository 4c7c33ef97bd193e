"""Sync one segment: diff it against the last state in SQL, decide in the ledger, then deliver.

The order of operations is what makes it safe to retry, resume and run twice:

1. A session advisory lock per segment: a second sync of the same segment waits (`wait=True`) or
   stops with one line.
2. Reconcile rows a crashed run left `pending` (see `_reconcile`).
3. One transaction decides everything, set-based in the warehouse: who entered and who left
   (anti-joins between `segments.seg_<name>` and `email_sync.segment_membership`, never pulled
   into Python), the blast-radius breaker, the new membership state, and one ledger row per
   email with its fate (`pending`, `failed: invalid address`, `suppressed`, `capped`). A dry run
   runs this same transaction and rolls it back, and never builds a provider.
4. Delivery in batches: rows are stamped `attempted_at` (committed) before the provider call and
   get their outcome after it. A crash between the provider's accept and that commit leaves a
   `pending` row with `attempted_at` set, which the next run reconciles instead of resending.
5. The list mirror (SendGrid Marketing list) from `segment_membership.list_status`, so a failed
   list call is simply picked up by the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from email_sync.hashing import hash_key
from email_sync.providers import (
    AmbiguousSendError,
    Contact,
    ListsUnsupported,
    OutgoingEmail,
    Provider,
    ProviderError,
    SendOutcome,
    get_provider,
)
from email_sync.render import EMAIL_RE, Renderer, valid_email
from email_sync.schema import ensure_email_schema
from email_sync.specs import SegmentSpec
from onramp.errors import OnrampError
from onramp.settings import Settings

log = logging.getLogger(__name__)

STEP = "entry"  # the triggered email; multi-step campaigns will add their own steps
LOCK_CLASS = "onramp.email_sync"
INVALID = "invalid address"
WORK_MEM = "256MB"
DRY_RUN_ID = -1  # ledger rows a dry run decides (and rolls back) carry this run id


class SegmentBusy(OnrampError):
    """Another sync of the same segment holds the lock."""


class BlastRadiusExceeded(OnrampError):
    """The change is too large to push without --allow-large."""


class SegmentMissing(OnrampError):
    """The segment table does not exist in the warehouse."""


@dataclass
class SyncResult:
    """What one sync of one segment did (or, with dry_run, would do)."""

    segment: str
    as_of: date
    provider: str
    dry_run: bool = False
    status: str = "ok"  # ok | refused
    run_id: int | None = None
    first_sync: bool = False
    members: int = 0
    entered: int = 0
    exited: int = 0
    sent: int = 0
    suppressed: int = 0
    failed: int = 0
    capped: int = 0
    skipped: int = 0
    unconfirmed: int = 0
    retried: int = 0
    gave_up: int = 0
    list_added: int = 0
    list_removed: int = 0
    list_skipped: int = 0
    list_pending: int = 0
    notes: list[str] = field(default_factory=list)
    sample_markdown: str = ""
    sample_html: str = ""
    sample_member_hashes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    provider_seconds: float = 0.0
    diff_seconds: float = 0.0

    def as_row(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "members": self.members,
            "entered": self.entered,
            "exited": self.exited,
            "sent": self.sent,
            "suppressed": self.suppressed,
            "failed": self.failed,
            "capped": self.capped,
        }


def _lock_ids(segment: str) -> dict[str, str]:
    return {"cls": LOCK_CLASS, "seg": segment}


def _acquire(conn: sa.Connection, segment: str, wait: bool) -> None:
    sql = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    got = conn.execute(
        sa.text(f"select {sql}(hashtext(:cls), hashtext(:seg))"), _lock_ids(segment)
    ).scalar()
    conn.commit()
    if not wait and not got:
        raise SegmentBusy(
            f"segment {segment} is being synced by another run; try again later or pass --wait"
        )


def _release(conn: sa.Connection, segment: str) -> None:
    try:
        conn.rollback()
        conn.execute(
            sa.text("select pg_advisory_unlock(hashtext(:cls), hashtext(:seg))"),
            _lock_ids(segment),
        )
        conn.commit()
    except sa.exc.DBAPIError:  # the connection is gone; the server released the lock with it
        log.debug("advisory unlock failed; connection closed", exc_info=True)


def _utc_now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def sync_segment(
    engine: sa.Engine,
    settings: Settings,
    spec: SegmentSpec,
    as_of: date,
    dry_run: bool = False,
    allow_large: bool = False,
    *,
    provider: Provider | None = None,
    wait: bool = False,
    renderer: Renderer | None = None,
    now: datetime | None = None,
) -> SyncResult:
    """Diff `spec`'s segment table and deliver the change; see the module docstring for the order.

    Raises SegmentBusy, BlastRadiusExceeded, SegmentMissing (OnrampError, one line each).
    """
    started = time.perf_counter()
    clock = _utc_now(now)
    renderer = renderer or Renderer(sender=settings.email_from)
    if spec.email:
        renderer.check(spec.email.template)
    result = SyncResult(
        segment=spec.name,
        as_of=as_of,
        provider=settings.email_provider if provider is None else provider.name,
        dry_run=dry_run,
    )
    own_provider = provider is None and not dry_run
    if own_provider:
        provider = get_provider(settings)
    try:
        with engine.connect() as conn:
            if dry_run:
                _decide(conn, settings, spec, as_of, allow_large, result, renderer, None, clock)
            else:
                _sync_locked(
                    conn,
                    settings,
                    spec,
                    as_of,
                    allow_large,
                    result,
                    renderer,
                    provider,
                    wait,
                    clock,
                )
    finally:
        if own_provider and provider is not None:
            provider.close()
    if provider is not None:
        result.provider_seconds = provider.wait_seconds
    result.seconds = time.perf_counter() - started
    log.info(
        "sync %s%s: members=%d entered=%d exited=%d sent=%d suppressed=%d failed=%d capped=%d",
        spec.name,
        " (dry run)" if dry_run else "",
        result.members,
        result.entered,
        result.exited,
        result.sent,
        result.suppressed,
        result.failed,
        result.capped,
    )
    return result


def sync_all(
    engine: sa.Engine,
    settings: Settings,
    specs: Iterable[SegmentSpec],
    as_of: date,
    dry_run: bool = False,
    allow_large: bool = False,
    **kwargs: Any,
) -> list[SyncResult | OnrampError]:
    """Sync segments highest email priority first, so the frequency cap favours the important
    email when one developer enters several segments on the same day. A refused or busy segment
    does not stop the others; its error is returned in its place."""
    results: list[SyncResult | OnrampError] = []
    for spec in sorted(specs, key=lambda s: (-s.priority, s.name)):
        try:
            results.append(
                sync_segment(engine, settings, spec, as_of, dry_run, allow_large, **kwargs)
            )
        except (SegmentBusy, BlastRadiusExceeded, SegmentMissing) as exc:
            results.append(exc)
    return results


# --- the locked, writing path -------------------------------------------------------------------


def _sync_locked(
    conn: sa.Connection,
    settings: Settings,
    spec: SegmentSpec,
    as_of: date,
    allow_large: bool,
    result: SyncResult,
    renderer: Renderer,
    provider: Provider,
    wait: bool,
    clock: datetime,
) -> None:
    with conn.begin():
        ensure_email_schema(conn)
    _acquire(conn, spec.name, wait)
    try:
        run_id = _start_run(conn, spec, as_of, provider.name)
        result.run_id = run_id
        try:
            if spec.email:
                _reconcile(conn, spec, provider, result)
            _decide(conn, settings, spec, as_of, allow_large, result, renderer, provider, clock)
            if spec.email:
                _deliver(conn, settings, spec, run_id, provider, renderer, result)
            if spec.list_name:
                _sync_list(conn, spec, provider, result)
            _count_run(conn, spec, run_id, settings, result)
            _finish_run(conn, run_id, "ok", result, "; ".join(result.notes) or None)
        except BlastRadiusExceeded as exc:
            result.status = "refused"
            _finish_run(conn, run_id, "refused", result, str(exc))
            raise
        except Exception as exc:
            _finish_run(conn, run_id, "error", result, _one_line(exc))
            raise
    finally:
        _release(conn, spec.name)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _start_run(conn: sa.Connection, spec: SegmentSpec, as_of: date, provider: str) -> int:
    with conn.begin():
        # We hold the segment lock, so any other "running" row is a run that died.
        conn.execute(
            sa.text(
                "update email_sync.sync_runs set status = 'crashed', finished_at = now() "
                "where segment = :seg and status = 'running'"
            ),
            {"seg": spec.name},
        )
        return conn.execute(
            sa.text(
                "insert into email_sync.sync_runs (segment, as_of, provider, status) "
                "values (:seg, :as_of, :provider, 'running') returning run_id"
            ),
            {"seg": spec.name, "as_of": as_of, "provider": provider},
        ).scalar_one()


def _finish_run(
    conn: sa.Connection, run_id: int, status: str, r: SyncResult, message: str | None
) -> None:
    try:
        conn.rollback()
        with conn.begin():
            conn.execute(
                sa.text(
                    """
                    update email_sync.sync_runs set status = :status, finished_at = now(),
                        members = :members, entered = :entered, exited = :exited, sent = :sent,
                        suppressed = :suppressed, failed = :failed, capped = :capped,
                        skipped = :skipped, unconfirmed = :unconfirmed,
                        list_added = :list_added, list_removed = :list_removed,
                        message = :message
                    where run_id = :run_id
                    """
                ),
                {
                    "status": status,
                    "run_id": run_id,
                    "message": message,
                    "members": r.members,
                    "entered": r.entered,
                    "exited": r.exited,
                    "sent": r.sent,
                    "suppressed": r.suppressed,
                    "failed": r.failed,
                    "capped": r.capped,
                    "skipped": r.skipped,
                    "unconfirmed": r.unconfirmed,
                    "list_added": r.list_added,
                    "list_removed": r.list_removed,
                },
            )
    except sa.exc.DBAPIError:
        log.warning("could not record the end of sync run %s", run_id, exc_info=True)


def _reconcile(conn: sa.Connection, spec: SegmentSpec, provider: Provider, r: SyncResult) -> None:
    """Settle rows a crashed run left `pending` after handing them to a provider.

    The choice, per provider: the outbox can be asked exactly (is the .eml there?) so a missing
    file is resent and a present one is `sent`. SendGrid and SMTP cannot be asked whether a given
    message was accepted (SendGrid's mail send has no idempotency key and no lookup by custom_arg
    in its contract), so such rows become `sent_unconfirmed` and are never resent: a missing
    email is better than a duplicate. Each SendGrid personalization carries the custom_arg
    `onramp_message_id`, so the Event Webhook can later confirm them.
    """
    with conn.begin():
        rows = conn.execute(
            sa.text(
                "select message_id, provider from email_sync.messages "
                "where segment = :seg and status = 'pending' and attempted_at is not null "
                "for update"
            ),
            {"seg": spec.name},
        ).all()
        if not rows:
            return
        sent, resend, unknown = [], [], []
        for message_id, row_provider in rows:
            answer = provider.was_delivered(message_id) if row_provider == provider.name else None
            (sent if answer else resend if answer is False else unknown).append(message_id)
        conn.execute(
            sa.text(
                "update email_sync.messages set status = 'sent', sent_at = now(), "
                "updated_at = now(), reason = 'confirmed after an interrupted run' "
                "where message_id = any(:ids)"
            ),
            {"ids": sent},
        )
        conn.execute(
            sa.text(
                "update email_sync.messages set attempted_at = null, updated_at = now() "
                "where message_id = any(:ids)"
            ),
            {"ids": resend},
        )
        conn.execute(
            sa.text(
                "update email_sync.messages set status = 'sent_unconfirmed', updated_at = now(), "
                "sent_at = attempted_at, reason = :reason where message_id = any(:ids)"
            ),
            {
                "ids": unknown,
                "reason": "handed to the provider before an interrupted run; not resent",
            },
        )
    if unknown:
        r.notes.append(f"{len(unknown)} interrupted message(s) marked sent_unconfirmed")
    log.info(
        "reconciled %s: %d sent, %d to resend, %d unconfirmed",
        spec.name,
        len(sent),
        len(resend),
        len(unknown),
    )


# --- the decision transaction --------------------------------------------------------------------


def _decide(
    conn: sa.Connection,
    settings: Settings,
    spec: SegmentSpec,
    as_of: date,
    allow_large: bool,
    r: SyncResult,
    renderer: Renderer,
    provider: Provider | None,
    clock: datetime,
) -> None:
    """Diff, breaker, new state and ledger rows in one transaction (rolled back for a dry run)."""
    dry = provider is None
    seg = spec.name
    rel = spec.relation
    tx = conn.begin()
    try:
        if dry:
            ensure_email_schema(conn)  # rolled back with the rest
            # No sync_runs row: even a rolled-back insert would advance its sequence.
            run_id = DRY_RUN_ID
        else:
            run_id = r.run_id
        exists = conn.execute(
            sa.text("select to_regclass(:rel) is not null"), {"rel": rel}
        ).scalar_one()
        if not exists:
            raise SegmentMissing(
                f"segment table {spec.schema}.{spec.table} not found: run `onramp build` first"
            )
        _check_columns(conn, spec)
        t0 = time.perf_counter()
        params = {"seg": seg, "as_of": as_of, "now": clock}
        # The anti-joins hash a whole segment; the 4 MB default makes a million keys spill to
        # disk. This transaction only, so the server's setting stays as the operator left it.
        conn.execute(sa.text(f"set local work_mem = '{WORK_MEM}'"))
        r.members = conn.execute(sa.text(f"select count(*) from {rel}")).scalar_one()
        r.first_sync = not conn.execute(
            sa.text(
                "select exists (select 1 from email_sync.segment_membership where segment = :seg)"
            ),
            params,
        ).scalar_one()
        # One pass over both sides: a full join of the segment with the active membership keeps
        # only the unmatched rows, i.e. who entered and who exited.
        conn.execute(
            sa.text(
                f"""
                create temp table _diff on commit drop as
                select coalesce(s.member_key, m.member_key) as member_key,
                       s.developer_id, s.email, m.member_key is null as entered
                from (select member_key, developer_id, email from {rel}) as s
                full join (
                    select member_key from email_sync.segment_membership
                    where segment = :seg and exited_at is null
                ) as m on m.member_key = s.member_key
                where s.member_key is null or m.member_key is null
                """
            ),
            params,
        )
        conn.execute(
            sa.text(
                "create temp table _entered on commit drop as "
                "select member_key, developer_id, email from _diff where entered"
            )
        )
        conn.execute(
            sa.text(
                "create temp table _exited on commit drop as "
                "select member_key from _diff where not entered"
            )
        )
        conn.execute(sa.text("analyze _entered"))  # temp tables have no statistics otherwise
        conn.execute(sa.text("analyze _exited"))
        r.entered = conn.execute(sa.text("select count(*) from _entered")).scalar_one()
        r.exited = conn.execute(sa.text("select count(*) from _exited")).scalar_one()
        previous_active = r.members - r.entered + r.exited
        _check_blast_radius(settings, spec, r, previous_active, allow_large)
        r.sample_member_hashes = [
            hash_key(k)
            for k in conn.execute(
                sa.text("select member_key from _entered order by member_key limit 5")
            ).scalars()
        ]
        _write_membership(conn, spec, params)
        r.diff_seconds = time.perf_counter() - t0
        if spec.email:
            _decide_messages(conn, settings, spec, run_id, params, r, provider, clock)
            _sample(conn, spec, run_id, renderer, r)
            if dry:
                _count_run(conn, spec, run_id, settings, r)
        if spec.list_name and dry:
            r.list_added, r.list_removed = conn.execute(
                sa.text(
                    "select count(*) filter (where list_status = 'pending_add' "
                    "and exited_at is null), count(*) filter (where list_status = "
                    "'pending_remove') from email_sync.segment_membership where segment = :seg"
                ),
                params,
            ).one()
    except BaseException:
        tx.rollback()
        raise
    if dry:
        tx.rollback()
        return
    tx.commit()
    if r.entered + r.exited > max(10_000, r.members // 10):
        # Large changes (a first sync of a big segment) leave the planner blind until
        # autovacuum catches up; fresh statistics keep the next diff on hash joins.
        conn.execute(sa.text("analyze email_sync.segment_membership"))
        conn.commit()


REQUIRED_COLUMNS = ("member_key", "developer_id", "email", "marketing_opt_in")


def _check_columns(conn: sa.Connection, spec: SegmentSpec) -> None:
    """One line instead of a SQL error when a segment table breaks the contract."""
    present = set(
        conn.execute(
            sa.text(
                "select column_name from information_schema.columns "
                "where table_schema = :schema and table_name = :table"
            ),
            {"schema": spec.schema, "table": spec.table},
        ).scalars()
    )
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise SegmentMissing(
            f"segment table {spec.schema}.{spec.table} lacks column(s) {', '.join(missing)} "
            "(every seg_ table needs member_key, developer_id, email, marketing_opt_in)"
        )


def _check_blast_radius(
    settings: Settings, spec: SegmentSpec, r: SyncResult, previous_active: int, allow_large: bool
) -> None:
    """Refuse a change larger than blast_radius_share of the segment (and at least
    blast_radius_min_members), unless allow_large. The first sync of a segment (no prior state)
    is exempt: everything "enters" by definition, which is the expected bootstrap, not an accident.
    The share is of the larger of the previous and the current size, so emptying a segment trips
    it as surely as doubling one."""
    if allow_large or r.first_sync:
        return
    size = max(previous_active, r.members, 1)
    for what, count in (("enter", r.entered), ("exit", r.exited)):
        if (
            count >= settings.blast_radius_min_members
            and count > settings.blast_radius_share * size
        ):
            raise BlastRadiusExceeded(
                f"segment {spec.name}: {count:,} of {size:,} members would {what} "
                f"({count / size:.0%} > {settings.blast_radius_share:.0%}); refusing to sync, "
                "rerun with --allow-large if this change is expected"
            )


def _write_membership(conn: sa.Connection, spec: SegmentSpec, params: dict[str, Any]) -> None:
    has_list = spec.list_name is not None
    conn.execute(
        sa.text(
            """
            insert into email_sync.segment_membership as m (
                segment, member_key, developer_id, email, entered_at, entered_as_of,
                entry_count, list_status
            )
            select :seg, e.member_key, e.developer_id,
                   case when :has_list then lower(btrim(e.email)) end,
                   :now, :as_of, 1,
                   case when :has_list then 'pending_add' end
            from _entered as e
            on conflict (segment, member_key) do update set
                developer_id = excluded.developer_id,
                email = coalesce(excluded.email, m.email),
                entered_at = excluded.entered_at,
                entered_as_of = excluded.entered_as_of,
                exited_at = null,
                exited_as_of = null,
                entry_count = m.entry_count + 1,
                list_status = excluded.list_status
            """
        ),
        {**params, "has_list": has_list},
    )
    conn.execute(
        sa.text(
            """
            update email_sync.segment_membership as m set
                exited_at = :now,
                exited_as_of = :as_of,
                list_status = case when m.list_status in ('synced', 'pending_add')
                                   then 'pending_remove' else m.list_status end
            from _exited as x
            where m.segment = :seg and m.member_key = x.member_key
            """
        ),
        params,
    )


def _decide_messages(
    conn: sa.Connection,
    settings: Settings,
    spec: SegmentSpec,
    run_id: int,
    params: dict[str, Any],
    r: SyncResult,
    provider: Provider | None,
    clock: datetime,
) -> None:
    """One ledger row per entered member, then every guardrail as a set-based UPDATE over this
    run's `pending` rows: invalid address, suppression, consent, frequency cap by priority."""
    assert spec.email is not None
    email = spec.email
    rel = spec.relation
    p = {
        **params,
        "run": run_id,
        "step": STEP,
        "template": email.template,
        "kind": email.kind,
        "priority": email.priority,
        "bypass": email.bypass_frequency_cap,
        "reentry": spec.reentry,
        "email_re": EMAIL_RE,
        "max_attempts": settings.max_send_attempts,
    }
    inserted = conn.execute(
        sa.text(
            f"""
            insert into email_sync.messages (
                message_id, segment, step, member_key, period, developer_id, email, template,
                kind, priority, bypass_cap, payload, status, reason, run_id
            )
            select gen_random_uuid()::text, :seg, :step, s.member_key,
                   case when :reentry then 'entry-' || m.entry_count else 'once' end,
                   s.developer_id, lower(btrim(s.email)), :template, :kind, :priority, :bypass,
                   to_jsonb(s), 'pending', null, :run
            from _entered as e
            join {rel} as s on s.member_key = e.member_key
            join email_sync.segment_membership as m
              on m.segment = :seg and m.member_key = e.member_key
            on conflict on constraint messages_once do nothing
            """
        ),
        p,
    ).rowcount
    # Re-entries with reentry: false (or a row this period already has) are skipped, not resent.
    r.skipped += max(r.entered - inserted, 0)
    # Failed rows get another try, up to max_send_attempts; rows a crashed run decided but never
    # handed to a provider are adopted. Members who have left by now are not emailed.
    r.retried = conn.execute(
        sa.text(
            """
            update email_sync.messages set status = 'pending', run_id = :run,
                attempted_at = null, updated_at = now()
            where segment = :seg and step = :step and run_id is distinct from :run and (
                (status = 'failed' and reason is distinct from 'invalid address'
                 and attempts < :max_attempts)
                or (status = 'pending' and attempted_at is null)
            )
            """
        ),
        p,
    ).rowcount
    conn.execute(
        sa.text(
            """
            update email_sync.messages as g set status = 'skipped',
                reason = 'no longer in the segment', updated_at = now()
            from email_sync.segment_membership as m
            where g.run_id = :run and g.status = 'pending' and m.segment = g.segment
              and m.member_key = g.member_key and m.exited_at is not null
            """
        ),
        p,
    )
    conn.execute(
        sa.text(
            """
            update email_sync.messages set status = 'failed', reason = 'invalid address',
                updated_at = now()
            where run_id = :run and status = 'pending'
              and (email is null or length(email) > 254 or email !~ :email_re)
            """
        ),
        p,
    )
    pending = conn.execute(
        sa.text(
            "select count(*) from email_sync.messages where run_id = :run and status = 'pending'"
        ),
        p,
    ).scalar_one()
    if pending and provider is not None:
        _refresh_suppressions(conn, provider)
    conn.execute(
        sa.text(
            """
            update email_sync.messages as g set status = 'suppressed',
                reason = 'suppressed: ' || s.reason, updated_at = now()
            from email_sync.suppressions as s
            where g.run_id = :run and g.status = 'pending' and s.email = g.email
            """
        ),
        p,
    )
    conn.execute(
        sa.text(
            f"""
            update email_sync.messages as g set status = 'suppressed',
                reason = 'no marketing consent', updated_at = now()
            where g.run_id = :run and g.status = 'pending' and g.kind = 'marketing'
              and not coalesce(
                  (select s.marketing_opt_in from {rel} as s where s.member_key = g.member_key),
                  (g.payload ->> 'marketing_opt_in')::boolean,
                  false)
            """
        ),
        p,
    )
    _apply_frequency_cap(conn, settings, p, clock)


def _apply_frequency_cap(
    conn: sa.Connection, settings: Settings, p: dict[str, Any], clock: datetime
) -> None:
    """At most daily_email_cap emails per developer per UTC day and weekly_email_cap per 7 UTC
    days (today and the 6 before). Earlier decisions (sent, unconfirmed, or pending from other
    segments) count first; within this run the highest priority wins. A transaction-level lock
    serialises cap decisions across segments synced at the same time."""
    conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('onramp.email_sync.cap'))"))
    day_start = datetime.combine(clock.date(), datetime.min.time(), tzinfo=UTC)
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
        {
            **p,
            "day_start": day_start,
            "week_start": day_start - timedelta(days=6),
            "daily": settings.daily_email_cap,
            "weekly": settings.weekly_email_cap,
        },
    )


def _refresh_suppressions(conn: sa.Connection, provider: Provider) -> None:
    """Copy the provider's suppression lists into email_sync.suppressions (only when there is
    something to send, so a sync with no change makes no provider call)."""
    pairs = {}
    for address, reason in provider.fetch_suppressions():
        if address:
            pairs.setdefault(address.strip().lower(), reason)
    if not pairs:
        return
    conn.execute(
        sa.text(
            """
            insert into email_sync.suppressions (email, reason, source)
            select e, r, :source from unnest(cast(:emails as text[]), cast(:reasons as text[]))
                as t(e, r)
            on conflict (email) do nothing
            """
        ),
        {"emails": list(pairs), "reasons": list(pairs.values()), "source": provider.name},
    )


def _sample(
    conn: sa.Connection, spec: SegmentSpec, run_id: int, renderer: Renderer, r: SyncResult
) -> None:
    """Render one email of this run for the summary (Dagster metadata), address hashed."""
    assert spec.email is not None
    row = conn.execute(
        sa.text(
            "select message_id, member_key, payload from email_sync.messages "
            "where run_id = :run and status = 'pending' order by member_key limit 1"
        ),
        {"run": run_id},
    ).first()
    if row is None:
        return
    try:
        rendered = renderer.render(
            spec.email.template, dict(row.payload), row.message_id, spec.name, spec.email.kind
        )
    except Exception as exc:  # a broken template shows in the summary; the send records it
        r.sample_markdown = f"template {spec.email.template} failed to render: {_one_line(exc)}"
        return
    r.sample_html = rendered.html
    r.sample_markdown = (
        f"**Subject:** {rendered.subject}\n\n"
        f"**To:** member `{hash_key(row.member_key)}` (template `{spec.email.template}`)\n\n"
        f"```text\n{rendered.text}```\n"
    )


# --- delivery --------------------------------------------------------------------------------


def _deliver(
    conn: sa.Connection,
    settings: Settings,
    spec: SegmentSpec,
    run_id: int,
    provider: Provider,
    renderer: Renderer,
    r: SyncResult,
) -> None:
    assert spec.email is not None
    last = ""
    while True:
        with conn.begin():
            rows = conn.execute(
                sa.text(
                    """
                    update email_sync.messages set attempts = attempts + 1,
                        attempted_at = now(), provider = :provider, updated_at = now()
                    where message_id in (
                        select message_id from email_sync.messages
                        where run_id = :run and status = 'pending' and message_id > :last
                        order by message_id limit :batch
                    )
                    returning message_id, member_key, email, payload, template
                    """
                ),
                {
                    "run": run_id,
                    "last": last,
                    "batch": provider.batch_size,
                    "provider": provider.name,
                },
            ).all()
        if not rows:
            return
        rows.sort(key=lambda row: row.message_id)
        last = rows[-1].message_id
        outcomes: list[SendOutcome] = []
        emails: list[OutgoingEmail] = []
        for row in rows:
            if not valid_email(row.email):  # belt and braces: SQL already rejected these
                outcomes.append(SendOutcome(row.message_id, "failed", INVALID))
                continue
            try:
                rendered = renderer.render(
                    row.template, dict(row.payload), row.message_id, spec.name, spec.email.kind
                )
            except Exception as exc:
                outcomes.append(
                    SendOutcome(row.message_id, "failed", f"template error: {_one_line(exc)}")
                )
                continue
            emails.append(
                OutgoingEmail(
                    message_id=row.message_id,
                    to=row.email,
                    subject=rendered.subject,
                    html=rendered.html,
                    text=rendered.text,
                    segment=spec.name,
                    template=row.template,
                    headers={"List-Unsubscribe": f"<{renderer.unsubscribe_url(row.message_id)}>"},
                )
            )
        if emails:
            try:
                outcomes.extend(provider.send(emails))
            except AmbiguousSendError as exc:
                outcomes.extend(
                    SendOutcome(e.message_id, "sent_unconfirmed", _one_line(exc)) for e in emails
                )
            except ProviderError as exc:
                outcomes.extend(SendOutcome(e.message_id, "failed", _one_line(exc)) for e in emails)
        _record_outcomes(conn, outcomes)


def _record_outcomes(conn: sa.Connection, outcomes: list[SendOutcome]) -> None:
    if not outcomes:
        return
    with conn.begin():
        conn.execute(
            sa.text(
                """
                update email_sync.messages as g set
                    status = o.status, reason = o.reason, provider_message_id = o.pmid,
                    sent_at = case when o.status in ('sent', 'sent_unconfirmed') then now() end,
                    updated_at = now()
                from unnest(cast(:ids as text[]), cast(:statuses as text[]),
                            cast(:reasons as text[]), cast(:pmids as text[]))
                    as o(id, status, reason, pmid)
                where g.message_id = o.id and g.status = 'pending'
                """
            ),
            {
                "ids": [o.message_id for o in outcomes],
                "statuses": [o.status for o in outcomes],
                "reasons": [(o.reason or None) and o.reason[:1000] for o in outcomes],
                "pmids": [o.provider_message_id for o in outcomes],
            },
        )


def _count_run(
    conn: sa.Connection, spec: SegmentSpec, run_id: int, settings: Settings, r: SyncResult
) -> None:
    counts = dict(
        conn.execute(
            sa.text(
                "select status, count(*) from email_sync.messages where run_id = :run "
                "group by status"
            ),
            {"run": run_id},
        ).all()
    )
    # In a dry run nothing is sent: `sent` is what would be sent.
    r.sent = counts.get("sent", 0) + (counts.get("pending", 0) if r.dry_run else 0)
    r.suppressed = counts.get("suppressed", 0)
    r.failed = counts.get("failed", 0)
    r.capped = counts.get("capped", 0)
    r.skipped += counts.get("skipped", 0)
    r.unconfirmed = counts.get("sent_unconfirmed", 0)
    if spec.email:
        r.gave_up = conn.execute(
            sa.text(
                "select count(*) from email_sync.messages where segment = :seg "
                "and status = 'failed' and (reason = 'invalid address' or attempts >= :max)"
            ),
            {"seg": spec.name, "max": settings.max_send_attempts},
        ).scalar_one()
    if not r.dry_run:
        conn.commit()


# --- list mirror -----------------------------------------------------------------------------


_NUMBER_TYPES = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}
_DATE_TYPES = {"date", "timestamp without time zone", "timestamp with time zone"}


def _field_types(conn: sa.Connection, spec: SegmentSpec) -> dict[str, str]:
    types = dict(
        conn.execute(
            sa.text(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = :schema and table_name = :table"
            ),
            {"schema": spec.schema, "table": spec.table},
        ).all()
    )
    out = {}
    for column in spec.custom_fields:
        if column not in types:
            raise OnrampError(
                f"segment {spec.name}: custom field {column!r} is not a column of {spec.table}"
            )
        data_type = types[column]
        out[column] = (
            "Number"
            if data_type in _NUMBER_TYPES
            else "Date"
            if data_type in _DATE_TYPES
            else "Text"
        )
    return out


def _sync_list(conn: sa.Connection, spec: SegmentSpec, provider: Provider, r: SyncResult) -> None:
    """Mirror membership into the provider's list from `list_status`: members without consent or
    with an invalid or suppressed address are not added (`skipped`). Rows the provider did not
    confirm stay pending for the next run."""
    rel = spec.relation
    with conn.begin():
        r.list_skipped = conn.execute(
            sa.text(
                f"""
                update email_sync.segment_membership as m set list_status = 'skipped'
                from {rel} as s
                where m.segment = :seg and m.list_status = 'pending_add' and m.exited_at is null
                  and s.member_key = m.member_key
                  and (not coalesce(s.marketing_opt_in, false) or m.email is null
                       or exists (select 1 from email_sync.suppressions as x
                                  where x.email = m.email))
                """
            ),
            {"seg": spec.name},
        ).rowcount
        field_types = _field_types(conn, spec)
        columns = ", ".join(f's."{c}"' for c in spec.custom_fields)
        adds = conn.execute(
            sa.text(
                f"""
                select m.member_key, m.email, s.name{", " + columns if columns else ""}
                from email_sync.segment_membership as m
                join {rel} as s on s.member_key = m.member_key
                where m.segment = :seg and m.list_status = 'pending_add' and m.exited_at is null
                """
            ),
            {"seg": spec.name},
        ).all()
        removes = conn.execute(
            sa.text(
                "select member_key, email from email_sync.segment_membership "
                "where segment = :seg and list_status = 'pending_remove'"
            ),
            {"seg": spec.name},
        ).all()
        invalid = [row.member_key for row in adds if not valid_email(row.email)]
        if invalid:  # SendGrid would reject the whole upsert request for one of these
            conn.execute(
                sa.text(
                    "update email_sync.segment_membership set list_status = 'skipped' "
                    "where segment = :seg and member_key = any(:keys)"
                ),
                {"seg": spec.name, "keys": invalid},
            )
            r.list_skipped += len(invalid)
    if not adds and not removes:
        return
    contacts: dict[str, Contact] = {}
    n_fields = len(spec.custom_fields)
    for row in adds:
        if not valid_email(row.email):
            continue
        name = (row.name or "").strip()
        values = row[3 : 3 + n_fields]
        fields = {c: _field_value(v) for c, v in zip(spec.custom_fields, values, strict=True)}
        contacts[row.email] = Contact(row.email, name.split()[0] if name else None, fields)
    # An address still (or again) wanted by another member is not removed from the list.
    removal_emails = sorted(
        {row.email for row in removes if row.email and row.email not in contacts}
    )
    try:
        outcome = provider.sync_list(
            spec.list_name or spec.name, field_types, list(contacts.values()), removal_emails
        )
    except ListsUnsupported as exc:
        r.list_pending = len(adds) + len(removes)
        r.notes.append(str(exc))
        return
    except ProviderError as exc:
        r.list_pending = len(adds) + len(removes)
        r.notes.append(f"list sync failed, retried next run: {_one_line(exc)}")
        return
    # Mark done by exclusion: the usual case is "all confirmed", and a million-key array would
    # cost more than the update itself. We hold the segment lock, so nothing else moved these rows.
    add_missing = [e for e in contacts if e not in outcome.upserted]
    remove_missing = [e for e in removal_emails if e not in outcome.removed]
    with conn.begin():
        added = conn.execute(
            sa.text(
                "update email_sync.segment_membership set list_status = 'synced', "
                "list_synced_at = now() where segment = :seg and list_status = 'pending_add' "
                "and exited_at is null and email <> all(cast(:missing as text[]))"
            ),
            {"seg": spec.name, "missing": add_missing},
        ).rowcount
        removed = conn.execute(
            sa.text(
                "update email_sync.segment_membership set list_status = 'removed', "
                "list_synced_at = now() where segment = :seg and list_status = 'pending_remove' "
                "and (email is null or email <> all(cast(:missing as text[])))"
            ),
            {"seg": spec.name, "missing": remove_missing},
        ).rowcount
    r.list_added = len(outcome.upserted)
    r.list_removed = len(outcome.removed)
    r.list_pending = len(adds) + len(removes) - added - removed
    if outcome.failed:
        r.notes.append(f"{len(outcome.failed)} list contact(s) failed, retried next run")


def _field_value(value: Any) -> Any:
    """SendGrid field values: Text as str, Number as int/float, Date as MM/DD/YYYY."""
    if value is None or type(value) in (str, int, float):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%m/%d/%Y")
    if isinstance(value, date):
        return value.strftime("%m/%d/%Y")
    if isinstance(value, Decimal):
        return float(value)
    return value
