"""The CRM step of `onramp demo`: push to a local HubSpot server when ONRAMP_CRM=hubspot-local,
to the configured HubSpot when a token is set, else say in one line that it is skipped.

The local server is the test support's (`tests/support/hubspot_server.HubSpotServer`); the demo
(command-line layer) passes it in, so crm_sync itself never imports the tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

import sqlalchemy as sa

from onramp.settings import Settings


def demo_crm_step(
    engine: sa.Engine,
    as_of: date,
    manifest: str | os.PathLike[str],
    echo: Callable[[str], None] = print,
    local_server: Callable[[], AbstractContextManager[Any]] | None = None,
) -> list[str]:
    """Run the CRM push of the demo and echo one line per pump (or one line saying it is skipped).
    Returns the lines echoed, for the demo's own summary.

    local_server: a factory of a context manager whose value has `.env()` giving
    HUBSPOT_ACCESS_TOKEN / HUBSPOT_API_HOST (e.g. `HubSpotServer`), used with
    ONRAMP_CRM=hubspot-local.
    """
    from crm_sync.push import push_all
    from crm_sync.result import PushResult
    from crm_sync.specs import load_pump_specs

    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        echo(line)

    mode = (os.environ.get("ONRAMP_CRM") or "").strip().lower()
    settings = Settings.from_env()
    if mode != "hubspot-local" and not settings.hubspot_access_token:
        say(
            "CRM step skipped: no HubSpot settings "
            "(set HUBSPOT_ACCESS_TOKEN, or ONRAMP_CRM=hubspot-local)"
        )
        return lines

    def run(settings: Settings, where: str) -> None:
        specs = load_pump_specs(manifest, settings.hubspot_company_id_property)
        # the demo's sample data is the whole portal: a first push is expected to be large
        for outcome in push_all(engine, settings, specs, as_of, allow_large=True):
            if isinstance(outcome, PushResult):
                say(
                    f"CRM ({where}): {outcome.pump}: {outcome.pushed} of {outcome.changed} changed "
                    f"{outcome.object_type} pushed, {outcome.rejected} rejected, "
                    f"{outcome.associations} associated, {outcome.requests} requests"
                    + (f" ({'; '.join(outcome.notes)})" if outcome.notes else "")
                )
            else:
                say(f"CRM ({where}): error: {outcome}")

    if mode == "hubspot-local":
        import dataclasses

        if local_server is None:
            say("CRM step skipped: ONRAMP_CRM=hubspot-local needs the local HubSpot server")
            return lines
        with local_server() as server:
            env = server.env()
            local = dataclasses.replace(
                settings,
                hubspot_access_token=env["HUBSPOT_ACCESS_TOKEN"],
                hubspot_api_host=env["HUBSPOT_API_HOST"],
            )
            run(local, "local HubSpot server")
    else:
        run(settings, settings.hubspot_api_host or "HubSpot")
    return lines
