"""Raw loads as assets (one per raw table), the raw events freshness check, the landing sensor.

The raw load assets carry the keys the dbt translator gives the dbt sources (``raw_api_events``
...), so a load sits directly upstream of the staging model that reads its table. They are
partitioned by as-of day like every asset: partition D of a raw load means "the landing files
known when day D was built are loaded", and the freshness check says whether events reach the end
of D.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from onramp.freshness import EventFreshness, warehouse_events_freshness
from onramp.settings import Settings
from orchestration.defs.ingest.landing import RAW_KINDS, LandingFile, landing_files, new_files
from orchestration.lib.automation import default_sensor_status
from orchestration.lib.dbt_translator import RAW_GROUP, source_asset_key
from orchestration.lib.partitions import DAILY, ONE_DAY_PER_RUN, run_as_of
from orchestration.lib.resources import OnrampResource

RAW_TABLE_DESCRIPTIONS = {
    "developers": "App users (raw.developers), loaded from the landing folder.",
    "endpoints": "The endpoint catalog (raw.endpoints), loaded from the landing folder.",
    "incidents": "Service incidents (raw.incidents), loaded from the landing folder.",
    "api_events": "One row per API call (raw.api_events), loaded from the landing folder.",
}


class RawLoadConfig(dg.Config):
    """Which files a raw load reads (the landing sensor names the new ones)."""

    paths: list[str] = Field(
        default_factory=list,
        description="Files to load. Empty: every file of this kind in the landing folder "
        "(files already loaded are skipped by checksum).",
    )


FRESH_CHECK = "events_fresh"


def raw_asset_key(kind: str) -> dg.AssetKey:
    """The asset key of the load of raw.<kind> (the key the dbt sources map onto)."""
    return source_asset_key("raw", kind)


def _files_for(kind: str, config: RawLoadConfig, landing_dir: Path) -> list[LandingFile]:
    known = {f.path: f for f in landing_files(landing_dir)}
    if not config.paths:
        return [f for f in known.values() if f.kind == kind]
    chosen = []
    for text in config.paths:
        path = Path(text).expanduser().resolve()
        chosen.append(known.get(path) or LandingFile(path=path, kind=kind))
    return chosen


def _fresh_check_spec() -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=FRESH_CHECK,
        asset=raw_asset_key("api_events"),
        description=(
            "Raw API events reach the end of the as-of day (within max_event_lag_hours). When "
            "this fails, syncs of segments with requires_fresh_events hold their sends back."
        ),
    )


def _fresh_check_result(freshness: EventFreshness) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=raw_asset_key("api_events"),
        check_name=FRESH_CHECK,
        passed=freshness.fresh,
        severity=dg.AssetCheckSeverity.WARN,
        description=freshness.describe(),
        metadata={
            "as_of": freshness.as_of.isoformat(),
            "latest_event_at": freshness.latest_event_at.isoformat()
            if freshness.latest_event_at
            else "none",
            "lag_hours": freshness.lag_hours if freshness.lag_hours is not None else -1.0,
            "max_lag_hours": freshness.max_lag_hours,
        },
    )


def _loader(settings: Settings, engine: Any) -> Callable[..., list]:
    """load_paths for the configured warehouse: COPY into PostgreSQL, or Spark's own readers."""
    if settings.warehouse == "spark":
        from ingest.spark.load import load_paths_spark
        from onramp.spark import spark_session

        spark = spark_session(settings)
        return lambda kind, paths, fmt, caller: load_paths_spark(spark, kind, paths, fmt, caller)
    from ingest.loader import load_paths
    from onramp.raw_schema import ensure_raw_schema

    ensure_raw_schema(engine)
    return lambda kind, paths, fmt, caller: load_paths(engine, kind, paths, fmt=fmt, caller=caller)


def _build_raw_asset(kind: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key(kind),
        group_name=RAW_GROUP,
        kinds={Settings.from_env().warehouse},
        description=RAW_TABLE_DESCRIPTIONS[kind],
        metadata={"dagster/table_name": f"raw.{kind}"},
        partitions_def=DAILY,
        backfill_policy=ONE_DAY_PER_RUN,
        check_specs=[_fresh_check_spec()] if kind == "api_events" else None,
    )
    def _load(context: dg.AssetExecutionContext, config: RawLoadConfig, onramp: OnrampResource):
        settings = onramp.settings()
        files = _files_for(kind, config, settings.landing_dir)
        engine = onramp.engine()
        load = _loader(settings, engine)
        results = []
        # Runs of files with the same format and caller, in load order (landing_files).
        for (fmt, caller), run in groupby(files, key=lambda f: (f.format, f.caller)):
            results.extend(load(kind, [item.path for item in run], fmt, caller))
        totals = {
            "files": len(results),
            "files_skipped": sum(1 for r in results if r.skipped),
            "files_failed": sum(1 for r in results if r.failed),
            "rows_loaded": sum(r.rows_loaded for r in results),
            "rows_duplicate": sum(r.rows_duplicate for r in results),
            "rows_rejected": sum(r.rows_rejected for r in results),
        }
        context.log.info(f"raw.{kind}: {totals} from {settings.landing_dir}")
        for r in results:  # a bad file is a failed batch; the others still load
            if r.failed:
                context.log.warning(f"{r.path} not loaded: {r.error}")
        table = "\n".join(
            f"| {Path(r.path).name} | {r.format} | {r.rows_loaded} | {r.rows_duplicate} | "
            f"{r.rows_rejected} | {'yes' if r.skipped else 'no'} | {r.error or ''} |"
            for r in results
        )
        yield dg.MaterializeResult(
            metadata={
                **totals,
                "landing_dir": dg.MetadataValue.path(str(settings.landing_dir)),
                "batches": dg.MetadataValue.md(
                    "| file | format | loaded | duplicate | rejected | already loaded | failed |\n"
                    "| --- | --- | --- | --- | --- | --- | --- |\n" + table
                    if results
                    else "no files of this kind in the landing folder"
                ),
            }
        )
        if context.selected_asset_check_keys:
            as_of = run_as_of(context)
            freshness = warehouse_events_freshness(
                engine, as_of, onramp.max_event_lag_hours, settings
            )
            yield _fresh_check_result(freshness)

    return _load


RAW_ASSETS = [_build_raw_asset(kind) for kind in RAW_KINDS]


@dg.sensor(
    name="landing_files",
    minimum_interval_seconds=30,
    default_status=default_sensor_status(),
    asset_selection=[raw_asset_key(kind) for kind in RAW_KINDS],
    description="Loads new or changed files of the landing folder (ONRAMP_LANDING_DIR) into raw.",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One run that loads the landing folder's new files, for the latest partition."""
    from onramp.settings import Settings

    landing_dir = Settings.from_env().landing_dir
    cursor = json.loads(context.cursor) if context.cursor else {}
    fresh, new_cursor = new_files(landing_dir, cursor)
    if not fresh:
        if new_cursor != cursor:
            return dg.SensorResult(
                skip_reason=f"no new files in {landing_dir}",
                cursor=json.dumps(new_cursor, sort_keys=True),
            )
        return dg.SkipReason(f"no new files in {landing_dir}")
    by_kind: dict[str, list[str]] = defaultdict(list)
    for item in fresh:
        by_kind[item.kind].append(str(item.path))
    run_key = hashlib.sha256(
        json.dumps({k: new_cursor[k] for k in sorted(map(str, (f.path for f in fresh)))}).encode()
    ).hexdigest()[:16]
    request = dg.RunRequest(
        run_key=run_key,
        partition_key=DAILY.get_last_partition_key(),
        asset_selection=[raw_asset_key(kind) for kind in by_kind],
        run_config={
            "ops": {
                raw_asset_key(kind).to_python_identifier(): {"config": {"paths": paths}}
                for kind, paths in by_kind.items()
            }
        },
        tags={"onramp/trigger": "landing_files"},
    )
    context.log.info(f"{len(fresh)} new file(s) in {landing_dir}: {dict(by_kind)}")
    return dg.SensorResult(run_requests=[request], cursor=json.dumps(new_cursor, sort_keys=True))


defs = dg.Definitions(assets=RAW_ASSETS, sensors=[landing_sensor])
