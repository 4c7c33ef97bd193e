"""Render the funnel report: a PNG per chart and index.html in $ONRAMP_HOME/reports/<as-of>/."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from onramp.settings import Settings
from report.charts import CHARTS, SIZE_PX, write_png
from report.data import (
    ENGAGEMENT,
    LIFT,
    MARTS,
    REQUIRED,
    ReportError,
    last_built_day,
    load_report_data,
)
from report.page import render_page

log = logging.getLogger(__name__)

HTML_NAME = "index.html"


@dataclass
class ChartFile:
    """One chart PNG written for the report."""

    name: str
    title: str
    question: str
    path: Path
    note: str | None  # why the chart is empty, when it is


@dataclass
class Report:
    """What render_report wrote: the page, its charts and where they are."""

    as_of: date
    directory: Path
    html_path: Path
    charts: list[ChartFile] = field(default_factory=list)
    campaigns_with_lift: int = 0
    size_px: tuple[int, int] = SIZE_PX


def report_dir(settings: Settings, as_of: date) -> Path:
    """Where the report for an as-of day goes by default."""
    return settings.home / "reports" / as_of.isoformat()


def render_report(
    engine: sa.Engine,
    as_of: date | None = None,
    out_dir: Path | None = None,
    settings: Settings | None = None,
) -> Report:
    """Draw every chart for the as-of day (default: the last day the marts hold) and the page.

    A missing or empty funnel mart is a ReportError; a missing lift or engagement mart gives
    that chart a "nothing yet" note instead, so the report works before the first campaign.
    """
    settings = settings or Settings.from_env()
    if settings.warehouse == "spark":
        # the marts are built on Spark; the report's queries read copies in the state database
        from onramp.spark_copy import copy_tables

        copy_tables(engine, settings, [f"{MARTS}.{name}" for name in (*REQUIRED, LIFT, ENGAGEMENT)])
    as_of = as_of or last_built_day(engine)
    directory = out_dir or report_dir(settings, as_of)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create report directory {directory}: {exc.strerror}") from exc
    data = load_report_data(engine, as_of)
    drawn = []
    report = Report(as_of=as_of, directory=directory, html_path=directory / HTML_NAME)
    for spec in CHARTS:
        path, png, note = write_png(spec, data, directory)
        drawn.append((spec, png, note))
        report.charts.append(ChartFile(spec.name, spec.title, spec.question, path, note))
        log.info("chart %s: %s%s", spec.name, path, f" ({note})" if note else "")
    report.html_path.write_text(render_page(as_of, data, drawn), encoding="utf-8")
    report.campaigns_with_lift = sum(
        1 for r in data.lift or [] if r["share_difference"] is not None
    )
    return report
