"""The funnel report as a Dagster asset, downstream of the marts it draws.

`funnel_report` renders the same PNGs and HTML page as `onramp report` for the run's as-of date,
under $ONRAMP_HOME/reports/<as-of>/. Its materialization carries the charts inline (markdown
with data-URI images), so the Dagster UI shows them on the asset page, plus the page's path. It
has no schedule of its own: the daily build-and-sync job selects every asset, so the report is
drawn each day right after the dbt build it depends on.
"""

# No `from __future__ import annotations`: Dagster reads the context annotations at definition time.
import base64
import json

import dagster as dg

from onramp.manifest import manifest_path
from orchestration.lib.dbt_translator import model_asset_key
from orchestration.lib.partitions import DAILY, ONE_DAY_PER_RUN, run_as_of
from orchestration.lib.resources import OnrampResource

REPORT_GROUP = "report"
# The marts the charts read; the engagement mart joins when the project has it.
REPORT_MODELS = (
    "fct_signup_cohorts_weekly",
    "fct_stage_counts_daily",
    "fct_stage_transitions_daily",
    "dim_developers",
    "fct_campaign_lift",
    "fct_email_engagement_daily",
)


def _report_deps() -> list[dg.AssetKey]:
    """The report's marts that the dbt project defines (an absent one is simply not drawn)."""
    manifest = json.loads(manifest_path().read_text(encoding="utf-8"))
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    return [model_asset_key(name) for name in REPORT_MODELS if name in models]


def charts_markdown(report) -> str:
    """Every chart inline (data URI) with its question, for the asset's metadata."""
    parts = []
    for chart in report.charts:
        png = base64.b64encode(chart.path.read_bytes()).decode("ascii")
        note = f"\n\n_{chart.note}_" if chart.note else ""
        parts.append(
            f"### {chart.title}\n\n{chart.question}\n\n"
            f"![{chart.title}](data:image/png;base64,{png}){note}"
        )
    return "\n\n".join(parts)


@dg.asset(
    key=dg.AssetKey("funnel_report"),
    deps=_report_deps(),
    group_name=REPORT_GROUP,
    partitions_def=DAILY,
    backfill_policy=ONE_DAY_PER_RUN,
    kinds={"matplotlib", "html"},
    description=(
        "The funnel report: weekly sign-up cohorts, stage counts and transitions, time to first "
        "Hello World, campaign lift against holdouts and engagement per campaign step, as PNGs "
        "and one self-contained HTML page under $ONRAMP_HOME/reports/<as-of>/."
    ),
)
def funnel_report(
    context: dg.AssetExecutionContext, onramp: OnrampResource
) -> dg.MaterializeResult:
    """Render the report for the run's as-of date and show its charts in the UI."""
    from report.build import render_report

    report = render_report(onramp.engine(), run_as_of(context), settings=onramp.settings())
    context.log.info(f"funnel report as of {report.as_of}: {report.html_path}")
    empty = [c.name for c in report.charts if c.note]
    return dg.MaterializeResult(
        metadata={
            "as_of": report.as_of.isoformat(),
            "html": dg.MetadataValue.path(str(report.html_path)),
            "directory": dg.MetadataValue.path(str(report.directory)),
            "charts": len(report.charts),
            "campaigns_with_lift": report.campaigns_with_lift,
            "charts_without_data": ", ".join(empty) if empty else "none",
            "report": dg.MetadataValue.md(charts_markdown(report)),
        }
    )


defs = dg.Definitions(assets=[funnel_report])
