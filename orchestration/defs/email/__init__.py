"""One sync asset per synced segment, built from the dbt manifest's segment meta; the hourly sync.

Nothing here names a segment: every ``seg_`` model whose ``config.meta.onramp`` asks for a list or
an email becomes an asset ``sync_<segment>`` downstream of its model. The syncs are one
multi-asset, so a run pushes segments one at a time in email priority order (the global frequency
cap then favours the important email, as `onramp sync` does) while the UI still shows, selects and
records each segment on its own.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.
import contextlib

import dagster as dg

from email_sync.specs import SegmentSpec, load_segment_specs
from onramp.freshness import EventFreshness, warehouse_events_freshness
from onramp.manifest import manifest_path
from onramp.redaction import safe_line
from orchestration.lib.automation import default_schedule_status, sync_run_tags
from orchestration.lib.dbt_translator import model_asset_key
from orchestration.lib.instance import EMAIL_POOL
from orchestration.lib.partitions import DAILY, ONE_DAY_PER_RUN, run_as_of
from orchestration.lib.resources import OnrampResource

EMAIL_GROUP = "email"
CHECK_NAME = "no_failed_sends"

SPECS: list[SegmentSpec] = load_segment_specs(manifest_path())


def sync_asset_key(segment: str) -> dg.AssetKey:
    """``sync_<segment>``: the asset that pushes one segment to the provider."""
    return dg.AssetKey(f"sync_{segment}")


def _describe(spec: SegmentSpec) -> str:
    parts = [f"Syncs `{spec.schema}.{spec.table}` to the email provider."]
    if spec.email:
        parts.append(
            f"Emails `{spec.email.template}` ({spec.email.kind}, priority {spec.email.priority}"
            + (", bypasses the frequency cap" if spec.email.bypass_frequency_cap else "")
            + ") to each member who enters"
            + ("; again on re-entry." if spec.reentry else "; once per member.")
        )
    if spec.list_name:
        parts.append(f"Mirrors membership into the list `{spec.list_name}`.")
    if spec.requires_fresh_events:
        parts.append("Holds sends back while raw API events are stale (requires_fresh_events).")
    return " ".join(parts)


def _asset_spec(spec: SegmentSpec) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=sync_asset_key(spec.name),
        deps=[model_asset_key(f"seg_{spec.name}")],
        group_name=EMAIL_GROUP,
        description=_describe(spec),
        kinds={"email"},
        skippable=True,
        tags={"onramp/requires_fresh_events": str(spec.requires_fresh_events).lower()},
        metadata={
            "segment": spec.name,
            "relation": f"{spec.schema}.{spec.table}",
            "template": spec.email.template if spec.email else "",
            "email_kind": spec.email.kind if spec.email else "",
            "priority": spec.priority,
            "list": spec.list_name or "",
            "requires_fresh_events": spec.requires_fresh_events,
        },
    )


def _check_spec(spec: SegmentSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=CHECK_NAME,
        asset=sync_asset_key(spec.name),
        description="No email of this sync failed (failed sends are retried by the next sync).",
    )


def _metadata(result, held_back: EventFreshness | None, freshness: EventFreshness) -> dict:
    hashes = list(getattr(result, "sample_member_hashes", []) or [])
    metadata = {
        "members": result.members,
        "entered": result.entered,
        "exited": result.exited,
        # A dry run (asked for, or a held-back sync) reports what it would send, never as sent.
        "sent": 0 if result.dry_run else result.sent,
        "would_send": result.sent if result.dry_run else 0,
        "suppressed": result.suppressed,
        "failed": result.failed,
        "capped": result.capped,
        "skipped": result.skipped,
        "dry_run": bool(result.dry_run),
        "held_back": held_back is not None,
        "as_of": result.as_of.isoformat(),
        "provider": result.provider,
        "raw_events": freshness.describe(),
        "sample_email": dg.MetadataValue.md(
            result.sample_markdown or "_no email rendered in this sync_"
        ),
        "sample_member_keys": dg.MetadataValue.md(
            "\n".join(f"- `{h}`" for h in hashes) if hashes else "_none_"
        ),
    }
    if getattr(result, "list_added", 0) or getattr(result, "list_removed", 0):
        metadata["list_added"] = result.list_added
        metadata["list_removed"] = result.list_removed
    notifications = list(getattr(result, "notifications", []) or [])
    if notifications:  # the message text only: webhook URLs never reach metadata
        metadata["team_notification"] = dg.MetadataValue.md(
            "\n\n".join(f"```\n{text}\n```" for text in notifications)
        )
        metadata["notified"] = getattr(result, "notified", 0)
    notes = list(getattr(result, "notes", []) or [])
    if held_back is not None:
        notes.insert(0, f"sends held back: {held_back.describe()}")
    if notes:
        metadata["notes"] = "; ".join(notes)
    return metadata


@contextlib.contextmanager
def _suppressions_pulled_once(engine, settings, dry_run: bool):
    """As `sync_all` does: the provider's suppressions are pulled once for the run's segments,
    outside their decision transactions, instead of in full by each segment."""
    from email_sync.feedback.suppression_pull import one_pull_per_sync
    from email_sync.providers import get_provider

    puller = None if dry_run else get_provider(settings)
    try:
        with one_pull_per_sync(engine, puller):
            yield
    finally:
        if puller is not None:
            puller.close()


@dg.multi_asset(
    name="segment_syncs",
    specs=[_asset_spec(spec) for spec in SPECS],
    check_specs=[_check_spec(spec) for spec in SPECS],
    can_subset=True,
    pool=EMAIL_POOL,
    partitions_def=DAILY,
    backfill_policy=ONE_DAY_PER_RUN,
)
def segment_syncs(context: dg.AssetExecutionContext, onramp: OnrampResource):
    """Sync the selected segments, highest email priority first; a refused one stops only itself."""
    from email_sync.sync import sync_segment

    settings = onramp.settings()
    engine = onramp.engine()
    as_of = run_as_of(context)
    freshness = warehouse_events_freshness(engine, as_of, onramp.max_event_lag_hours, settings)
    selected = context.selected_asset_keys
    errors: list[str] = []
    not_copied: dict[str, str] = {}
    if settings.warehouse == "spark":
        # the segments are built on Spark; the sync's SQL reads copies in the state database
        from email_sync.spark_mirror import mirror_for_sync

        chosen = [spec for spec in SPECS if sync_asset_key(spec.name) in selected]
        mirrored = mirror_for_sync(engine, settings, chosen, wait=True)
        context.log.info(mirrored.describe())
        not_copied = mirrored.unusable(chosen)
    with _suppressions_pulled_once(engine, settings, onramp.dry_run):
        for spec in SPECS:  # already in priority order
            key = sync_asset_key(spec.name)
            if key not in selected:
                continue
            if spec.name in not_copied:  # syncing would decide on yesterday's members
                context.log.error(f"sync_{spec.name} failed: {not_copied[spec.name]}")
                errors.append(f"{spec.name}: {not_copied[spec.name]}")
                continue
            stale = spec.requires_fresh_events and not freshness.fresh
            held_back = freshness if stale else None
            if held_back is not None:
                # A dry run still shows who would have entered and what they would get, and
                # records nothing: the next sync on fresh data sends to them.
                context.log.warning(f"sync_{spec.name}: sends held back, {held_back.describe()}")
            try:
                result = sync_segment(
                    engine,
                    settings,
                    spec,
                    as_of,
                    dry_run=onramp.dry_run or held_back is not None,
                    allow_large=onramp.allow_large,
                    initial=onramp.initial,
                )
            except Exception as exc:  # one segment's refusal must not stop the others
                line = safe_line(exc)  # secrets and addresses masked, as the CLI prints them
                context.log.error(f"sync_{spec.name} failed: {line}")
                errors.append(f"{spec.name}: {line}")
                continue
            metadata = _metadata(result, held_back, freshness)
            context.log.info(
                f"sync_{spec.name}: members={result.members} entered={result.entered} "
                f"exited={result.exited} "
                f"{'would send' if result.dry_run else 'sent'}={result.sent} "
                f"suppressed={result.suppressed} "
                f"failed={result.failed} capped={result.capped}"
                + (" (dry run)" if result.dry_run else "")
            )
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)
            if dg.AssetCheckKey(key, CHECK_NAME) in context.selected_asset_check_keys:
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=CHECK_NAME,
                    passed=result.failed == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"failed": result.failed, "sent": result.sent},
                )
    if errors:
        raise dg.Failure(
            description=f"{len(errors)} segment sync(s) failed: " + " | ".join(errors),
        )


sync_job = dg.define_asset_job(
    "sync_segments",
    selection=dg.AssetSelection.groups(EMAIL_GROUP),
    description="Push every synced segment's current changes to the email provider.",
)


def latest_built_partition(instance: dg.DagsterInstance) -> str | None:
    """The partition the segment tables hold now: that of the newest segment materialization.

    The hourly sync runs for it rather than for the clock's day, so a sync at 05:00 does not pair
    yesterday's segment tables with today's as-of day while the daily build is still running,
    and a backfill of an older day is followed by syncs of the day the tables describe.
    """
    latest: tuple[float, str] | None = None
    for spec in SPECS:
        event = instance.get_latest_materialization_event(model_asset_key(f"seg_{spec.name}"))
        partition = event.dagster_event.partition if event and event.dagster_event else None
        if partition and (latest is None or event.timestamp > latest[0]):
            latest = (event.timestamp, partition)
    return latest[1] if latest else None


@dg.schedule(
    job=sync_job,
    cron_schedule="30 * * * *",
    execution_timezone="UTC",
    default_status=default_schedule_status(),
    description="Hourly at :30: sync every segment for the day (partition) its tables hold.",
)
def hourly_sync(context: dg.ScheduleEvaluationContext):
    """One sync run for the latest built partition; nothing before the first build."""
    partition = latest_built_partition(context.instance)
    if partition is None:
        return dg.SkipReason("segments were never built on this instance: nothing to sync")
    return dg.RunRequest(partition_key=partition, tags=sync_run_tags())


# The ledger tables the syncs write, read back by dbt as the source `email_sync` (campaign
# reporting): declared here so they sit in the email group instead of an implicit default one.
LEDGER_TABLES = [
    dg.AssetSpec(
        dg.AssetKey(f"email_sync_{table}"),
        group_name=EMAIL_GROUP,
        description=f"email_sync.{table}, written by the sync assets (not materialized here).",
    )
    for table in ("messages", "segment_membership")
]


defs = dg.Definitions(
    assets=[segment_syncs, *LEDGER_TABLES] if SPECS else [],
    jobs=[sync_job] if SPECS else [],
    schedules=[hourly_sync] if SPECS else [],
)
