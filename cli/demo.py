"""`onramp demo`: the whole pipeline on generated sample data, through the Dagster definitions.

The work is done by orchestration.demo_pipeline (one in-process Dagster run of the as-of day's
partition: load, dbt build, segment syncs); this module only prints what happened, so an operator
sees the same numbers in the terminal as in the Dagster UI. Dagster's and dbt's own log lines go to
$ONRAMP_HOME/logs and the UI, not to the terminal.
"""

from __future__ import annotations

import datetime as dt

import click

from onramp.as_of import AS_OF


def _table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    """Print a titled table: first column left-aligned, the rest right-aligned."""
    click.echo(f"\n{title}")
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo(
            "  "
            + "  ".join(
                str(v).rjust(w) if i else str(v).ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=False))
            )
        )


@click.command()
@click.option(
    "--as-of",
    "as_of",
    type=AS_OF,
    default=None,
    help="Last complete UTC day of data, the partition to run (default: yesterday in UTC).",
)
@click.option("--developers", default=300, show_default=True, help="Sample developers.")
@click.option("--days", default=45, show_default=True, help="Days of sample traffic.")
@click.option("--seed", default=7, show_default=True, help="Seed of the sample data.")
@click.option("--dry-run", is_flag=True, help="Compute every sync but send and write nothing.")
def demo(as_of: dt.date | None, developers: int, days: int, seed: int, dry_run: bool) -> None:
    """Generate sample data, load it, build the models and sync every segment to the provider."""
    from onramp.as_of import parse_as_of
    from onramp.settings import Settings
    from orchestration.demo_pipeline import run_demo_pipeline

    day = parse_as_of(as_of)
    settings = Settings.from_env()
    click.echo(f"onramp demo: warehouse and state in {settings.home}", err=True)
    result = run_demo_pipeline(
        day,
        developers=developers,
        days=days,
        seed=seed,
        dry_run=dry_run,
        progress=lambda line: click.echo(f"  {line}", err=True),
    )
    click.echo(f"as-of {result.as_of}  (partition {result.as_of}, Dagster run {result.run_id})")
    _table(
        "Loaded",
        ("table", "rows", "duplicates", "rejects"),
        [
            (kind, c.get("rows_loaded", 0), c.get("rows_duplicate", 0), c.get("rows_rejected", 0))
            for kind, c in result.loads.items()
        ],
    )
    _table("Funnel on the as-of day", ("stage", "developers"), list(result.funnel.items()))
    sent = "would_send" if result.dry_run else "sent"
    _table(
        "Segments",
        ("segment", "members", "entered", "exited", sent, "suppressed", "capped", "failed"),
        [
            (
                name,
                members,
                result.syncs.get(name, {}).get("entered", "-"),
                result.syncs.get(name, {}).get("exited", "-"),
                result.syncs.get(name, {}).get(sent, "-"),
                result.syncs.get(name, {}).get("suppressed", "-"),
                result.syncs.get(name, {}).get("capped", "-"),
                result.syncs.get(name, {}).get("failed", "-"),
            )
            for name, members in result.segments.items()
        ],
    )
    for text in result.notifications:
        click.echo("\nteam notification " + text.strip())
    _campaign_table(settings, result.as_of)
    if not result.dry_run:
        click.echo(
            "\nfirst syncs: every current member was emailed (--initial send, the demo's choice); "
            "a real first `onramp sync` records members without emailing unless --initial send"
        )
    _crm_step(result.as_of, dry_run)
    if result.report_path is not None:
        click.echo(f"\nfunnel report: {result.report_path}")
    if result.held_back:
        click.echo(f"\nheld back (raw events stale): {', '.join(result.held_back)}")
    if result.dry_run:
        where = "emails: dry run, nothing sent or written"
    else:
        where = f"{result.emails_sent} emails {result.destination}"
    click.echo(f"\n{where}; {result.seconds:.1f} s in all. `make ui` shows the run in Dagster.")


def _campaign_table(settings, as_of: dt.date) -> None:
    """Per campaign, the steps sent, deferred by the frequency cap and held out (step:count)."""
    from email_sync.campaign_report import format_steps, steps_by_campaign
    from onramp.warehouse import get_engine

    campaigns = steps_by_campaign(get_engine(settings), as_of)
    if campaigns:
        _table(
            "Campaigns (step:emails)",
            ("campaign", "sent", "deferred", "held out"),
            [
                (name, *(format_steps(c[k]) for k in ("sent", "deferred", "held_out")))
                for name, c in sorted(campaigns.items())
            ],
        )


def _crm_step(as_of: dt.date, dry_run: bool) -> None:
    """The CRM push: to a local HubSpot peer with ONRAMP_CRM=hubspot-local, to HubSpot with a
    token, else one line saying it is skipped."""
    from crm_sync.demo import demo_crm_step
    from onramp.manifest import manifest_path
    from onramp.warehouse import get_engine

    if dry_run:
        click.echo("\nCRM step skipped: dry run")
        return
    try:  # the local HubSpot peer ships with the repository's tests, not with the package
        from tests.support.hubspot_server import HubSpotServer
    except ImportError:
        HubSpotServer = None  # noqa: N806
    click.echo("")
    demo_crm_step(get_engine(), as_of, manifest_path(), echo=click.echo, local_server=HubSpotServer)
