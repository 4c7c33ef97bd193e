"""`onramp report`: the funnel and lift charts as PNGs plus one self-contained HTML page."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from onramp.as_of import AS_OF


@click.command("report")
@click.option(
    "--as-of",
    "as_of",
    type=AS_OF,
    default=None,
    help="Day the report is for (YYYY-MM-DD); default the last day the marts were built for.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the PNGs and index.html; default $ONRAMP_HOME/reports/<as-of>/.",
)
def report(as_of: date | None, out_dir: Path | None) -> None:
    """Draw the funnel report: sign-up cohorts, stages, TTFHW, campaign lift, engagement."""
    from onramp.settings import Settings
    from onramp.warehouse import get_engine
    from report.build import render_report

    settings = Settings.from_env()
    result = render_report(get_engine(settings), as_of, out_dir, settings=settings)
    click.echo(f"Report as of {result.as_of}: {len(result.charts)} charts in {result.directory}")
    for chart in result.charts:
        click.echo(
            f"  {chart.path.name:<24} {chart.title}" + (f" ({chart.note})" if chart.note else "")
        )
    click.echo(f"Open {result.html_path}")
