"""dbt models as Dagster assets (dagster-dbt), dbt tests as asset checks, the daily schedule."""

# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.
import json
import os

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from onramp.warehouse import dbt_env
from orchestration.lib.automation import default_schedule_status, sync_run_request
from orchestration.lib.dbt_project import DBT_EXECUTABLE, DBT_PROJECT, ensure_manifest
from orchestration.lib.dbt_translator import OnrampDbtTranslator
from orchestration.lib.resources import OnrampResource

MANIFEST_PATH = ensure_manifest()
TRANSLATOR = OnrampDbtTranslator()


@dbt_assets(
    manifest=MANIFEST_PATH,
    project=DBT_PROJECT,
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_models",
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, onramp: OnrampResource):
    """`dbt build` of the selected models with their tests, for the run's as-of date."""
    from ingest.schema import ensure_raw_schema

    settings = onramp.settings()
    # Sources must resolve on an empty warehouse (dbt models selected before any load).
    ensure_raw_schema(onramp.engine())
    # dbt runs as a subprocess that inherits os.environ; profiles.yml reads these variables.
    os.environ.update(dbt_env(settings))
    dbt_vars = {"as_of_date": onramp.as_of().isoformat()}
    context.log.info(f"dbt build with vars {dbt_vars}")
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()


build_and_sync_job = dg.define_asset_job(
    "build_and_sync",
    selection=dg.AssetSelection.all(),
    description=(
        "Load any new landing files, build every dbt model with its tests for yesterday (UTC), "
        "then sync every segment to the email provider."
    ),
)


@dg.schedule(
    job=build_and_sync_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=default_schedule_status(),
    description="Daily at 05:00 UTC: build and sync for as-of = the previous UTC day.",
)
def daily_build_and_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return sync_run_request(context.scheduled_execution_time)


defs = dg.Definitions(
    assets=[dbt_models],
    jobs=[build_and_sync_job],
    schedules=[daily_build_and_sync],
    resources={"dbt": DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=DBT_EXECUTABLE)},
)
