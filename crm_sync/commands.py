"""The CRM push as a click command: a thin front over crm_sync.push (Dagster calls the same code).

`crm` can be mounted as a subcommand (`onramp crm ...`), and `run_crm_command(...)` is what an
`onramp sync --crm` flag calls with the same options.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

import click

from crm_sync.push import push_all
from crm_sync.result import PushResult
from crm_sync.specs import PumpSpec, load_pump_specs
from onramp.as_of import yesterday_utc
from onramp.errors import OnrampError
from onramp.manifest import manifest_path
from onramp.settings import Settings

COLUMNS = ("pump", "object", "rows", "changed", "pushed", "rejected", "associated", "requests")


def load_specs(settings: Settings, manifest: Path | None = None) -> list[PumpSpec]:
    """The pump specs declared in the dbt manifest (found when not given)."""
    return load_pump_specs(manifest or manifest_path(), settings.hubspot_company_id_property)


def format_table(results: list[PushResult]) -> str:
    """The push results as an aligned plain-text table, one row per pump."""
    rows = [COLUMNS] + [tuple(str(v) for v in r.as_row().values()) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            row[i].ljust(widths[i]) if i < 2 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_crm_command(
    *,
    dry_run: bool = False,
    allow_large: bool = False,
    as_of: date | None = None,
    max_event_lag_hours: float = 24,
    show: int = 10,
    echo=click.echo,
) -> int:
    """Push every pump and print the outcome; returns the exit code (1 when a pump failed)."""
    from onramp.warehouse import get_engine

    settings = Settings.from_env()
    specs = load_specs(settings)
    if not specs:
        echo("no model declares a CRM push (config.meta.onramp.crm)")
        return 0
    if not settings.hubspot_access_token and not dry_run:
        raise OnrampError(
            "HUBSPOT_ACCESS_TOKEN is not set: create a HubSpot private app (README, CRM sync) "
            "or pass --dry-run"
        )
    day = as_of or yesterday_utc()
    outcomes = push_all(
        get_engine(settings),
        settings,
        specs,
        day,
        dry_run=dry_run,
        allow_large=allow_large,
        max_event_lag_hours=max_event_lag_hours,
    )
    results = [o for o in outcomes if isinstance(o, PushResult)]
    errors = [o for o in outcomes if not isinstance(o, PushResult)]
    header = f"as of {day.isoformat()}, HubSpot at {settings.hubspot_api_host or 'api.hubapi.com'}"
    if dry_run or any(r.status == "held_back" for r in results):
        header += " (dry run: nothing written, nothing sent)"
    echo(header)
    if results:
        echo(format_table(results))
    for r in results:
        extra = list(r.notes)
        if r.properties_created:
            extra.append("created properties " + ", ".join(r.properties_created))
        if r.unconfirmed:
            extra.append(f"{r.unconfirmed} not confirmed by HubSpot, sent again next push")
        if r.rate_limited:
            extra.append(f"{r.rate_limited} rate-limited answers waited out")
        if extra:
            echo(f"{r.pump}: " + "; ".join(extra))
        for line in r.rejections:
            echo(f"{r.pump}: rejected {line}")
        if r.dry_run and r.changed:
            echo(f"{r.pump}: would push {r.changed} record(s), e.g.")
            for line in r.sample[:show]:
                echo(f"  {line}")
    for exc in errors:
        echo(f"error: {exc}", err=True)
    return 1 if errors else 0


@click.command("crm")
@click.option("--dry-run", is_flag=True, help="Print what would change; write and send nothing.")
@click.option(
    "--allow-large", is_flag=True, help="Let a change larger than the blast radius through."
)
@click.option(
    "--as-of", type=click.DateTime(["%Y-%m-%d"]), help="As-of day (default: yesterday UTC)."
)
@click.option(
    "--max-event-lag-hours",
    type=float,
    default=24,
    show_default=True,
    help="Raw API events older than this before the end of the as-of day hold the push back.",
)
@click.option("--show", default=10, show_default=True, help="Changed records a dry run prints.")
def crm(
    dry_run: bool,
    allow_large: bool,
    as_of: datetime | None,
    max_event_lag_hours: float,
    show: int,
) -> None:
    """Push API usage, funnel stage and role to HubSpot contacts and companies (what changed)."""
    code = run_crm_command(
        dry_run=dry_run,
        allow_large=allow_large,
        as_of=as_of.date() if as_of else None,
        max_event_lag_hours=max_event_lag_hours,
        show=show,
    )
    if code:
        sys.exit(code)
