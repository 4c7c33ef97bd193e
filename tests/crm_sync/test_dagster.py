"""The CRM push assets, generated from the manifest, materialized by Dagster in process."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa


def test_one_asset_per_pump_materializes_without_the_token_in_metadata(engine, fresh, hubspot_env):
    from orchestration.defs.crm import CHECK_NAME, crm_pushes
    from orchestration.lib.resources import OnrampResource

    keys = {k.to_user_string() for k in crm_pushes.keys}
    assert keys == {"crm_pump_hubspot_companies", "crm_pump_hubspot_contacts"}
    deps = {
        k.to_user_string(): {d.to_user_string() for d in v}
        for k, v in crm_pushes.asset_deps.items()
    }
    assert deps["crm_pump_hubspot_contacts"] == {
        "pump_hubspot_contacts",
        "crm_pump_hubspot_companies",
    }

    result = dg.materialize(
        [crm_pushes],
        resources={"onramp": OnrampResource()},
        partition_key=fresh.as_of.isoformat(),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    metadata = {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("crm_pushes")
    }
    with engine.connect() as conn:
        contacts = conn.execute(
            sa.text("select count(*) from pumps.pump_hubspot_contacts")
        ).scalar_one()
    assert metadata["crm_pump_hubspot_contacts"]["pushed"] == contacts
    assert len(hubspot_env.records("contacts")) == contacts
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {CHECK_NAME} and all(c.passed for c in checks)
    assert hubspot_env.token not in repr(metadata)
