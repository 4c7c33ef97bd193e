"""The `onramp` command: a thin front over the same code paths Dagster runs.

Subcommands live with the area that owns them and are imported only when used, so `onramp --help`
and `onramp load` stay fast and never import Dagster. Our own progress lines and results go to the
console; every library's log lines (dbt, Dagster, ...) go to $ONRAMP_HOME/logs/onramp.log.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from cli.logs import configure_logging
from onramp.errors import OnrampError
from onramp.redaction import safe_line

# name -> "module:attribute" of a click command
COMMANDS = {
    "demo": ("cli.demo:demo", "Run the whole pipeline on generated sample data."),
    "generate": ("sample_data.commands:generate_command", "Write deterministic sample data files."),
    "load": ("ingest.commands:load", "Load raw files (API events, developers, ...)."),
    "build": ("onramp.dbt:build", "Build the dbt models and run their tests."),
    "sync": ("cli.sync:sync", "Push segment changes to email (or, with --crm, to HubSpot)."),
    "preview": ("email_sync.commands:preview", "Render a campaign's email (sends nothing)."),
    "ui": ("orchestration.commands:ui", "Open the Dagster UI on the same settings."),
    "webhook": ("email_sync.feedback.commands:webhook", "Receive SendGrid events, unsubscribes."),
    "report": ("report.commands:report", "Draw the funnel and campaign lift report (PNG + HTML)."),
}


class LazyGroup(click.Group):
    """Commands imported only when called, each from the area that owns it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name][0].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name][0].split(":")
        # The module exists (checked above): an ImportError here is a real bug, so let it show.
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):  # one clear line instead of a traceback
        try:
            return super().invoke(ctx)
        except OnrampError as exc:
            click.echo(f"error: {safe_line(exc)}", err=True)  # secrets and addresses masked
            sys.exit(1)


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def cli(verbose: bool) -> None:
    """onramp: from sign-up to first API call to production, with email that reacts to usage."""
    configure_logging(verbose)
