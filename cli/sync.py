"""`onramp sync`: the email sync of every segment, or with `--crm` the HubSpot push of every pump.

Both syncs are areas of their own that never import each other, so the one command that offers
both lives here, on top of them.
"""

from __future__ import annotations

import sys

import click

from email_sync.commands import sync as email_sync_command

_CRM = click.Option(
    ["--crm"],
    is_flag=True,
    help="Push the CRM pumps to HubSpot instead (--dry-run, --allow-large and --as-of apply).",
)


@click.command(
    name="sync",
    params=[*email_sync_command.params, _CRM],
    help=(email_sync_command.help or "").strip()
    + "\n\nWith --crm: push what changed in the dbt pump models to HubSpot.",
)
@click.pass_context
def sync(ctx: click.Context, crm: bool, **options) -> None:
    """Dispatch to the email sync or, with --crm, to the CRM push."""
    if not crm:
        ctx.invoke(email_sync_command, **options)
        return
    from crm_sync.commands import run_crm_command

    sys.exit(
        run_crm_command(
            dry_run=options["dry_run"],
            allow_large=options["allow_large"],
            as_of=options["as_of"],
        )
    )
