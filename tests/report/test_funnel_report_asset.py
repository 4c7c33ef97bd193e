"""The Dagster asset `funnel_report`: a real materialization on the sample warehouse."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg

from tests.report.conftest import ReportWarehouse


def test_funnel_report_materializes_with_its_charts_in_the_metadata(
    report_warehouse: ReportWarehouse, onramp_home: Path
):
    from orchestration.defs.report import funnel_report
    from orchestration.lib.resources import RESOURCE_KEY, OnrampResource

    as_of = report_warehouse.as_of.isoformat()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [funnel_report],
            instance=instance,
            resources={RESOURCE_KEY: OnrampResource()},
            partition_key=as_of,
        )
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("funnel_report"))
    metadata = event.asset_materialization.metadata
    html = Path(metadata["html"].value)
    assert html == onramp_home / "reports" / as_of / "index.html"
    assert html.exists()
    assert metadata["charts"].value == 6
    assert metadata["campaigns_with_lift"].value == 4
    assert metadata["charts_without_data"].value == "engagement"
    images = re.findall(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)",
                        metadata["report"].value)  # fmt: skip
    assert [title for title, _ in images][:2] == [
        "Sign-up cohort funnel",
        "Funnel stages over time",
    ]
    assert len(images) == 6
    assert base64.b64decode(images[4][1]) == (html.parent / "campaign_lift.png").read_bytes()


def test_funnel_report_sits_downstream_of_the_marts():
    from orchestration.defs.report import funnel_report

    deps = {key.to_user_string() for key in funnel_report.asset_deps[dg.AssetKey("funnel_report")]}
    assert {"fct_signup_cohorts_weekly", "fct_stage_counts_daily", "fct_campaign_lift"} <= deps
