"""Sync one segment: diff it against the last state in SQL, decide in the ledger, then deliver.

The order of operations is what makes it safe to retry, resume and run twice:

1. A session advisory lock per segment (`segment_lock`): a second sync of the same segment
   waits (`wait=True`) or stops with one line.
2. Reconcile rows a crashed run left `pending` (`ledger.reconcile`).
3. One transaction decides everything, set-based in the warehouse: who entered and who left
   (`membership`), the blast-radius breaker, the new membership state, and one ledger row per
   email with its fate (`pending`, `failed: invalid address`, `suppressed`, `capped`; see
   `guardrails`). A dry run runs this same transaction and rolls it back, and never builds a
   provider.
4. Delivery in batches (`delivery`): rows are stamped `attempted_at` (committed) before the
   provider call and get their outcome after it. A crash between the provider's accept and that
   commit leaves a `pending` row with `attempted_at` set, which the next run reconciles instead of
   resending.
5. The list mirror (`list_mirror`) from `segment_membership.list_status`, so a failed list call
   is simply picked up by the next run.

Every non-dry run is recorded in `email_sync.sync_runs` (`sync_runs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from email_sync import guardrails, ledger, sequences
from email_sync.delivery import deliver, render_sample
from email_sync.errors import BlastRadiusExceeded, SegmentBusy, SegmentMissing, one_line
from email_sync.feedback.headers import MarketingNotConfigured, prepare_renderer
from email_sync.feedback.suppression_pull import one_pull_per_sync, pulled_this_sync
from email_sync.list_mirror import count_list_changes, sync_list
from email_sync.membership import (
    check_segment_table,
    diff_membership,
    refresh_statistics,
    segment_columns,
    write_membership,
)
from email_sync.notify import as_text, build_payload, post_due
from email_sync.notify import record as record_notification
from email_sync.providers import Provider, get_provider
from email_sync.render import Renderer
from email_sync.result import SyncResult
from email_sync.schema import ensure_email_schema
from email_sync.segment_lock import segment_lock
from email_sync.specs import SegmentSpec, load_segment_specs
from email_sync.sync_runs import finish_run, start_run
from onramp.errors import OnrampError
from onramp.settings import Settings

__all__ = [
    "BlastRadiusExceeded",
    "SegmentBusy",
    "SegmentMissing",
    "SyncResult",
    "load_segment_specs",
    "sync_all",
    "sync_segment",
]

log = logging.getLogger(__name__)

DRY_RUN_ID = -1  # ledger rows a dry run decides (and rolls back) carry this run id


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
    initial: str = "record",
) -> SyncResult:
    """Diff `spec`'s segment table and deliver the change; see the module docstring for the order.

    `initial="record"` (the default): a first sync of more than the blast-radius minimum of
    members records them without emailing (`guardrails.plan_entries`); "send" emails them.

    Raises SegmentBusy, BlastRadiusExceeded, SegmentMissing (OnrampError, one line each).
    """
    started = time.perf_counter()
    guardrails.check_initial(initial)
    clock = (now or datetime.now(UTC)).astimezone(UTC)
    renderer = prepare_renderer(settings, spec, renderer)
    if spec.sequence:
        for template in spec.sequence.templates:
            renderer.check(template)
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
                _decide(
                    conn, settings, spec, as_of, allow_large, result, renderer, None, clock, initial
                )
            else:
                assert provider is not None
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
                    initial,
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
    specs = list(specs)
    # The provider's suppressions are pulled once for all segments, outside their transactions.
    shared = kwargs.get("provider")
    puller = None if dry_run or shared is not None else get_provider(settings)
    try:
        with one_pull_per_sync(engine, None if dry_run else shared or puller):
            for spec in sorted(specs, key=lambda s: (-s.priority, s.name)):
                try:
                    results.append(
                        sync_segment(engine, settings, spec, as_of, dry_run, allow_large, **kwargs)
                    )
                except (
                    SegmentBusy,
                    BlastRadiusExceeded,
                    SegmentMissing,
                    MarketingNotConfigured,
                ) as exc:
                    results.append(exc)
    finally:
        if puller is not None:
            puller.close()
    return results


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
    initial: str = "record",
) -> None:
    """The writing path: lock, run row, reconcile, decide, deliver, mirror the list, count."""
    with conn.begin():
        ensure_email_schema(conn)
    with segment_lock(conn, spec.name, wait):
        run_id = start_run(conn, spec.name, as_of, provider.name)
        result.run_id = run_id
        try:
            if spec.email:
                ledger.reconcile(conn, spec, provider, result)
            _decide(
                conn, settings, spec, as_of, allow_large, result, renderer, provider, clock, initial
            )
            if spec.email:
                deliver(conn, spec, run_id, provider, renderer)
            if spec.list_name:
                sync_list(conn, spec, provider, result)
            ledger.count_run(conn, spec, run_id, settings.max_send_attempts, result)
            conn.commit()
            if spec.notify:
                _post_notifications(conn, settings, spec, result)
            finish_run(conn, run_id, "ok", result, "; ".join(result.notes) or None)
        except BlastRadiusExceeded as exc:
            result.status = "refused"
            finish_run(conn, run_id, "refused", result, str(exc))
            raise
        except Exception as exc:
            finish_run(conn, run_id, "error", result, one_line(exc))
            raise


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
    initial: str = "record",
) -> None:
    """Diff, breaker, new state and ledger rows in one transaction (rolled back for a dry run,
    which is the call without a provider)."""
    dry = provider is None
    tx = conn.begin()
    try:
        if dry:
            ensure_email_schema(conn)  # rolled back with the rest
            # No sync_runs row: even a rolled-back insert would advance its sequence.
            run_id = DRY_RUN_ID
        else:
            assert r.run_id is not None
            run_id = r.run_id
        check_segment_table(conn, spec)
        t0 = time.perf_counter()
        diff = diff_membership(conn, spec)
        r.members, r.entered, r.exited = diff.members, diff.entered, diff.exited
        r.first_sync = diff.first_sync
        plan = guardrails.plan_entries(
            conn,
            settings,
            spec,
            as_of,
            diff.entered,
            diff.members,
            diff.previous_active,
            diff.first_sync,
            initial,
        )
        guardrails.check_blast_radius(
            settings,
            spec,
            *plan.breaker_counts(diff.entered, diff.exited),
            diff.members,
            diff.previous_active,
            diff.first_sync,
            allow_large,
        )
        r.notes.extend(plan.notes)
        r.sample_member_hashes = diff.sample_member_hashes
        write_membership(conn, spec, as_of, clock)
        guardrails.drop_held_entries(conn, plan)
        r.diff_seconds = time.perf_counter() - t0
        if spec.notify:
            _decide_notification(conn, settings, spec, as_of, run_id, r, dry)
        if spec.email:
            _decide_messages(conn, settings, spec, as_of, run_id, r, provider, clock)
            r.skipped = max(r.skipped - plan.held(diff.entered), 0)  # held: noted, not skipped
            render_sample(conn, spec, run_id, renderer, r)
            if dry:
                ledger.count_run(conn, spec, run_id, settings.max_send_attempts, r)
        if spec.list_name and dry:
            count_list_changes(conn, spec, r)
    except BaseException:
        tx.rollback()
        raise
    if dry:
        tx.rollback()
        return
    tx.commit()
    refresh_statistics(conn, r.entered, r.exited, r.members)


def _decide_messages(
    conn: sa.Connection,
    settings: Settings,
    spec: SegmentSpec,
    as_of: date,
    run_id: int,
    r: SyncResult,
    provider: Provider | None,
    clock: datetime,
) -> None:
    """The campaign's ledger rows for today (see `sequences`), then every guardrail over this
    run's `pending` rows; what the frequency cap holds back waits for a later day."""
    t0 = time.perf_counter()
    sequences.skip_held(conn, spec, as_of)
    r.skipped += sequences.enroll(conn, spec, as_of)
    sequences.end_sequences(conn, spec, as_of)
    r.retried = ledger.adopt_unfinished(conn, spec, run_id, settings.max_send_attempts)
    sequences.skip_ended(conn, spec, run_id)
    sequences.decide_due_steps(conn, spec, as_of, settings.max_send_attempts)
    t1 = time.perf_counter()
    r.due_seconds = t1 - t0
    sequences.record_due_steps(conn, spec, run_id)
    r.record_seconds = time.perf_counter() - t1
    t1 = time.perf_counter()
    guardrails.reject_invalid_addresses(conn, run_id)
    # A single-segment sync still refreshes here; sync_all pulled once before all segments.
    if provider is not None and not pulled_this_sync() and ledger.count_pending(conn, run_id):
        guardrails.refresh_suppressions(conn, provider)
    guardrails.suppress(conn, spec, run_id)
    guardrails.apply_frequency_cap(conn, settings, run_id, clock)
    sequences.count_deferrals(conn, run_id)
    r.guardrail_seconds = time.perf_counter() - t1


def _decide_notification(
    conn: sa.Connection,
    settings: Settings,
    spec: SegmentSpec,
    as_of: date,
    run_id: int,
    r: SyncResult,
    dry: bool,
) -> None:
    """The team message for this run's diff, recorded with the membership it reports (a dry
    run only renders it). A destination whose URL variable is unset is named, not recorded."""
    assert spec.notify is not None
    payload = build_payload(
        conn,
        spec.name,
        spec.relation,
        segment_columns(conn, spec),
        spec.notify,
        as_of,
        settings.dashboard_url,
    )
    if payload is None:
        return
    text = as_text(payload)
    if dry:
        r.notifications.append(f"would post:\n{text}")
        return
    missing = record_notification(conn, spec.name, run_id, spec.notify, payload, as_of)
    if missing:
        r.notifications.append(f"not posted (set {', '.join(missing)} to post):\n{text}")
    if len(missing) < len(spec.notify.destinations):
        r.notifications.append(f"posting:\n{text}")


def _post_notifications(
    conn: sa.Connection, settings: Settings, spec: SegmentSpec, r: SyncResult
) -> None:
    """After the run's commit: post what this run (and failed earlier runs) recorded."""
    outcome = post_due(
        conn,
        spec.name,
        max_attempts=settings.max_send_attempts,
        timeout_s=settings.http_timeout_s,
    )
    r.notified += outcome.posted
    r.notify_failed += outcome.failed + outcome.rejected
    if outcome.failed or outcome.rejected:
        r.notes.append(
            f"team notification: {outcome.failed} failed (retried next run), "
            f"{outcome.rejected} rejected"
        )
