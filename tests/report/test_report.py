"""The funnel report rendered on the sample data: valid, non-blank PNGs and one page with all."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image

from tests.report.conftest import ReportWarehouse

CHART_NAMES = {"signup_funnel", "stage_counts", "stage_transitions", "ttfhw", "campaign_lift",
               "engagement"}  # fmt: skip


def _check_png(png: bytes, size: tuple[int, int], has_data: bool = True) -> None:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.verify()  # a truncated or corrupt file raises here
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size == size
    pixels = np.asarray(image, dtype=float)
    # drawn content, not a blank canvas: many pixels differ from the white background
    assert pixels.var() > 100
    # a chart with data inks more than its frame and title (an empty one says why, in a line)
    assert (pixels < 200).mean() > (0.02 if has_data else 0.005)


@pytest.fixture(scope="module")
def rendered(report_warehouse: ReportWarehouse, engine: sa.Engine, tmp_path_factory):
    from report.build import render_report

    return render_report(engine, report_warehouse.as_of, tmp_path_factory.mktemp("report"))


def test_every_chart_is_a_png_of_the_expected_size_with_content(rendered):
    from report.charts import SIZE_PX

    assert {c.name for c in rendered.charts} == CHART_NAMES
    for chart in rendered.charts:
        assert chart.path.parent == rendered.directory
        _check_png(chart.path.read_bytes(), SIZE_PX, has_data=chart.note is None)


def test_page_embeds_every_chart_and_nothing_external(rendered):
    page = rendered.html_path.read_text(encoding="utf-8")
    uris = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(CHART_NAMES)
    embedded = {base64.b64decode(uri) for uri in uris}
    assert embedded == {chart.path.read_bytes() for chart in rendered.charts}
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained
    for chart in rendered.charts:
        assert f'id="{chart.name}"' in page
    # the lift numbers are on the page too, one row per campaign with a holdout
    assert page.count("<tr><td>lift_") == 4


def test_sample_charts_have_data_and_engagement_says_none_yet(rendered):
    notes = {c.name: c.note for c in rendered.charts}
    assert notes.pop("engagement") == "no engagement events yet"
    assert notes == dict.fromkeys(notes)  # every other chart drew data
    assert rendered.campaigns_with_lift == 4


def test_engagement_chart_reads_the_engagement_mart(
    report_warehouse: ReportWarehouse, engine: sa.Engine, tmp_path: Path
):
    from report.build import render_report
    from report.charts import SIZE_PX

    with engine.begin() as conn:
        # The dbt build made the (empty) mart: keep it aside while the test's rows stand in.
        conn.execute(
            sa.text(
                "alter table if exists marts.fct_email_engagement_daily"
                " rename to fct_email_engagement_daily__kept"
            )
        )
        conn.execute(
            sa.text(
                "create table marts.fct_email_engagement_daily as select * from (values"
                " ('lift_known_effect', '1', date '2026-11-20', 100, 98, 40, 12, 1),"
                " ('lift_known_effect', '2', date '2026-11-20', 90, 88, 30, 8, 2),"
                " ('lift_known_effect', '10', date '2026-11-21', 50, 49, 20, 3, 0),"
                " ('lift_no_effect', '1', date '2026-11-21', 80, 80, 25, 9, 0)"
                ") as t (campaign, step, event_date, sent, delivered, unique_opens,"
                " unique_clicks, unsubscribes)"
            )
        )
    try:
        result = render_report(engine, report_warehouse.as_of, tmp_path)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("drop table marts.fct_email_engagement_daily"))
            conn.execute(
                sa.text(
                    "alter table if exists marts.fct_email_engagement_daily__kept"
                    " rename to fct_email_engagement_daily"
                )
            )
    engagement = next(c for c in result.charts if c.name == "engagement")
    assert engagement.note is None
    _check_png(engagement.path.read_bytes(), SIZE_PX)


def test_cli_writes_under_onramp_home_for_the_last_built_day(
    report_warehouse: ReportWarehouse, onramp_home: Path
):
    from cli.main import cli

    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 0, result.output
    directory = onramp_home / "reports" / report_warehouse.as_of.isoformat()
    assert f"Report as of {report_warehouse.as_of}: 6 charts in {directory}" in result.output
    assert (directory / "index.html").exists()
    assert sorted(p.name for p in directory.glob("*.png")) == sorted(
        f"{n}.png" for n in CHART_NAMES
    )


def test_cli_bad_as_of_is_one_line(report_warehouse: ReportWarehouse):
    from cli.main import cli

    result = CliRunner().invoke(cli, ["report", "--as-of", "26/11/2026"])
    assert result.exit_code == 2
    assert "Invalid value for '--as-of'" in result.output


def test_missing_marts_is_one_clear_error(engine: sa.Engine, report_warehouse, tmp_path):
    """On a warehouse without the marts the command says what to run, without a traceback."""
    from cli.main import cli

    with engine.begin() as conn:
        conn.execute(sa.text("alter table marts.fct_stage_counts_daily rename to hidden_counts"))
    try:
        result = CliRunner().invoke(cli, ["report", "--out", str(tmp_path)])
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text("alter table marts.hidden_counts rename to fct_stage_counts_daily")
            )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: marts.fct_stage_counts_daily does not exist: run `onramp build` before"
        " `onramp report`"
    )
