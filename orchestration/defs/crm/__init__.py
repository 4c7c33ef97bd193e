"""One CRM push asset per pump model, built from the dbt manifest's `config.meta.onramp.crm`.

Nothing here names a pump: every model whose meta declares a CRM push becomes an asset
``crm_<model>`` downstream of its model (and of the push of the object it associates with, so
companies land before the contacts that point at them). The pushes are one multi-asset, run in
push order; the UI still shows, selects and records each pump on its own. Without
HUBSPOT_ACCESS_TOKEN the pushes are skipped with one log line.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.
import dagster as dg

from crm_sync.push import summary_metadata
from crm_sync.specs import PumpSpec, load_pump_specs
from onramp.manifest import manifest_path
from onramp.redaction import safe_line
from onramp.settings import Settings
from orchestration.lib.dbt_translator import model_asset_key
from orchestration.lib.partitions import DAILY, ONE_DAY_PER_RUN, run_as_of
from orchestration.lib.resources import OnrampResource

CRM_GROUP = "crm"
CRM_POOL = "crm_provider"
CHECK_NAME = "no_rejected_records"

SPECS: list[PumpSpec] = load_pump_specs(
    manifest_path(), Settings.from_env().hubspot_company_id_property
)


def crm_asset_key(model: str) -> dg.AssetKey:
    """The asset that pushes one pump model to HubSpot."""
    return dg.AssetKey(f"crm_{model}")


def _describe(spec: PumpSpec) -> str:
    names = ", ".join(f"`{p.name}`" for p in spec.properties)
    text = (
        f"Pushes `{spec.schema}.{spec.table}` to HubSpot {spec.object_type} (upsert on "
        f"`{spec.id_property}`, only rows changed since HubSpot last confirmed them): {names}."
    )
    if spec.associate_object:
        text += f" Associates each record with its {spec.associate_object[:-1]}."
    return text + " Holds back while raw API events are stale."


def _asset_spec(spec: PumpSpec) -> dg.AssetSpec:
    deps = [model_asset_key(spec.model)]
    deps += [
        crm_asset_key(s.model)
        for s in SPECS
        if s.object_type == spec.associate_object and s != spec
    ]
    return dg.AssetSpec(
        key=crm_asset_key(spec.model),
        deps=deps,
        group_name=CRM_GROUP,
        description=_describe(spec),
        kinds={"hubspot"},
        skippable=True,
        metadata={
            "pump": spec.model,
            "relation": f"{spec.schema}.{spec.table}",
            "hubspot_object": spec.object_type,
            "id_property": spec.id_property,
            "properties": ", ".join(p.name for p in spec.properties),
        },
    )


def _check_spec(spec: PumpSpec) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=CHECK_NAME,
        asset=crm_asset_key(spec.model),
        description="HubSpot rejected no record of this push (rejected records wait for a change).",
    )


def _metadata(result) -> dict:
    metadata = summary_metadata(result)
    if result.rejections:
        metadata["rejections"] = dg.MetadataValue.md(
            "\n".join(f"- `{line}`" for line in result.rejections)
        )
    if result.sample:
        metadata["sample_changes"] = dg.MetadataValue.md(
            "\n".join(f"- `{line}`" for line in result.sample)
        )
    if result.notes:
        metadata["notes"] = "; ".join(result.notes)
    return metadata


@dg.multi_asset(
    name="crm_pushes",
    specs=[_asset_spec(spec) for spec in SPECS],
    check_specs=[_check_spec(spec) for spec in SPECS],
    can_subset=True,
    pool=CRM_POOL,
    partitions_def=DAILY,
    backfill_policy=ONE_DAY_PER_RUN,
)
def crm_pushes(context: dg.AssetExecutionContext, onramp: OnrampResource):
    """Push the selected pumps in push order; a refused pump stops only itself."""
    from crm_sync.push import push_all
    from crm_sync.result import PushResult

    settings = onramp.settings()
    if not settings.hubspot_access_token and not onramp.dry_run:
        context.log.warning("CRM push skipped: HUBSPOT_ACCESS_TOKEN is not set")
        return
    selected = [s for s in SPECS if crm_asset_key(s.model) in context.selected_asset_keys]
    outcomes = push_all(
        onramp.engine(),
        settings,
        selected,
        run_as_of(context),
        dry_run=onramp.dry_run,
        allow_large=onramp.allow_large,
        max_event_lag_hours=onramp.max_event_lag_hours,
    )
    errors: list[str] = []
    for spec, outcome in zip(selected, outcomes, strict=True):
        key = crm_asset_key(spec.model)
        if not isinstance(outcome, PushResult):
            line = safe_line(outcome)
            context.log.error(f"crm_{spec.model} failed: {line}")
            errors.append(f"{spec.model}: {line}")
            continue
        context.log.info(
            f"crm_{spec.model}: rows={outcome.rows} changed={outcome.changed} "
            f"pushed={outcome.pushed} rejected={outcome.rejected} "
            f"associated={outcome.associations} requests={outcome.requests}"
            + (" (dry run)" if outcome.dry_run else "")
        )
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(outcome))
        if dg.AssetCheckKey(key, CHECK_NAME) in context.selected_asset_check_keys:
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=CHECK_NAME,
                passed=outcome.rejected == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rejected": outcome.rejected, "pushed": outcome.pushed},
            )
    if errors:
        raise dg.Failure(description=f"{len(errors)} CRM push(es) failed: " + " | ".join(errors))


crm_job = dg.define_asset_job(
    "crm_push",
    selection=dg.AssetSelection.groups(CRM_GROUP),
    description="Push every pump's changed rows to HubSpot.",
)

defs = dg.Definitions(
    assets=[crm_pushes] if SPECS else [],
    jobs=[crm_job] if SPECS else [],
)
