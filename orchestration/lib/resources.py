"""The one resource every onramp asset shares: settings, warehouse engine and what a run decides.

The as-of day is not here: it is the run's partition key (orchestration.lib.partitions). Run-wide
switches (dry run, blast radius, freshness limit) live in run config
(``resources.onramp.config``), so the UI's launchpad shows them in one place.
"""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from onramp.settings import Settings

RESOURCE_KEY = "onramp"


def run_config_for(
    *,
    dry_run: bool = False,
    allow_large: bool = False,
    max_event_lag_hours: int | None = None,
    initial: str = "record",
) -> dict:
    """Run config that sets the shared resource (the demo and tests use it).

    Run config replaces the resource's whole config, so every field is written out.
    """
    config: dict = {"dry_run": dry_run, "allow_large": allow_large, "initial": initial}
    if max_event_lag_hours is not None:
        config["max_event_lag_hours"] = max_event_lag_hours
    return {"resources": {RESOURCE_KEY: {"config": config}}}


class OnrampResource(dg.ConfigurableResource):
    """Settings from the environment plus what one run decides: dry run, blast radius, freshness."""

    dry_run: bool = Field(
        default=False,
        description="Compute segment changes and render emails without sending or recording them.",
    )
    allow_large: bool = Field(
        default=False,
        description="Let a sync push a change larger than the blast-radius guard allows.",
    )
    initial: str = Field(
        default="record",
        description=(
            "A first sync of a segment larger than the blast-radius minimum: `record` its members "
            "without emailing them (default), or `send` to email every current member."
        ),
    )
    max_event_lag_hours: int = Field(
        default=24,
        description=(
            "Raw API events are stale when the latest one (up to the end of the as-of day) is "
            "older than this many hours before the end of the as-of day. Stale events hold back "
            "sends of segments whose meta has requires_fresh_events: true."
        ),
    )

    def settings(self) -> Settings:
        """Every setting, read from the environment of the run's process."""
        return Settings.from_env()

    def engine(self) -> sa.Engine:
        """The warehouse engine (the embedded PostgreSQL is started when needed)."""
        from onramp.warehouse import get_engine

        return get_engine(self.settings())
