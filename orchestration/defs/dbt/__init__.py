"""dbt models as daily-partitioned Dagster assets, dbt tests as asset checks, the daily schedule.

The models run in process through the core's dbt runner (orchestration.lib.dbt_events), for the
as-of day of the run's partition.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.
import dagster as dg
from dagster_dbt import dbt_assets

from onramp.manifest import load_manifest
from orchestration.lib.automation import default_schedule_status, sync_run_tags
from orchestration.lib.dbt_events import dbt_build_events
from orchestration.lib.dbt_translator import OnrampDbtTranslator
from orchestration.lib.partitions import DAILY, ONE_DAY_PER_RUN, run_as_of
from orchestration.lib.resources import OnrampResource

MANIFEST = load_manifest()
TRANSLATOR = OnrampDbtTranslator()


@dbt_assets(
    manifest=MANIFEST,
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_models",
    partitions_def=DAILY,
    backfill_policy=ONE_DAY_PER_RUN,
)
def dbt_models(context: dg.AssetExecutionContext, onramp: OnrampResource):
    """`dbt build` of the selected models with their tests, for the partition's as-of day."""
    yield from dbt_build_events(
        context, MANIFEST, TRANSLATOR, run_as_of(context), onramp.settings()
    )


build_and_sync_job = dg.define_asset_job(
    "build_and_sync",
    selection=dg.AssetSelection.all(),
    description=(
        "For one as-of day (partition): load any new landing files, build every dbt model with "
        "its tests, then sync every segment to the email provider."
    ),
)

daily_build_and_sync = dg.build_schedule_from_partitioned_job(
    build_and_sync_job,
    name="daily_build_and_sync",
    hour_of_day=5,
    minute_of_hour=0,
    default_status=default_schedule_status(),
    tags=sync_run_tags(),
    description="Daily at 05:00 UTC: build and sync the latest complete day (partition).",
)


defs = dg.Definitions(
    assets=[dbt_models],
    jobs=[build_and_sync_job],
    schedules=[daily_build_and_sync],
)
