"""The one resource every onramp asset shares: settings, warehouse engine and the run's as-of date.

The as-of date lives in run config (``resources.onramp.config.as_of_date``) rather than in each
op's config, so one value drives the dbt var, the freshness checks and every segment sync of a run,
and the UI's launchpad shows it in one place.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from onramp.errors import OnrampError
from onramp.settings import Settings

RESOURCE_KEY = "onramp"


def yesterday_utc() -> dt.date:
    """The default as-of date: the last complete UTC day."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def parse_as_of(text: str | dt.date | None) -> dt.date:
    """A date from 'YYYY-MM-DD' (empty or None: yesterday UTC), with a one-line error."""
    if isinstance(text, dt.date):
        return text
    if not text or not str(text).strip():
        return yesterday_utc()
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise OnrampError(f"as_of_date must be YYYY-MM-DD, got {text!r}") from exc


def run_config_for(
    as_of: dt.date | str | None = None,
    *,
    dry_run: bool = False,
    allow_large: bool = False,
    max_event_lag_hours: int | None = None,
) -> dict:
    """Run config that sets the shared resource (schedules, sensors, the demo and tests use it).

    Run config replaces the resource's whole config, so every field is written out.
    """
    config: dict = {
        "as_of_date": parse_as_of(as_of).isoformat() if as_of else "",
        "dry_run": dry_run,
        "allow_large": allow_large,
    }
    if max_event_lag_hours is not None:
        config["max_event_lag_hours"] = max_event_lag_hours
    return {"resources": {RESOURCE_KEY: {"config": config}}}


class OnrampResource(dg.ConfigurableResource):
    """Settings from the environment plus what one run decides: as-of date, dry run, freshness."""

    as_of_date: str = Field(
        default="",
        description="Last complete day of data, YYYY-MM-DD (dbt var as_of_date); empty: yesterday.",
    )
    dry_run: bool = Field(
        default=False,
        description="Compute segment changes and render emails without sending or recording them.",
    )
    allow_large: bool = Field(
        default=False,
        description="Let a sync push a change larger than the blast-radius guard allows.",
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
        return Settings.from_env()

    def as_of(self) -> dt.date:
        return parse_as_of(self.as_of_date)

    def engine(self) -> sa.Engine:
        from onramp.warehouse import get_engine

        return get_engine(self.settings())
