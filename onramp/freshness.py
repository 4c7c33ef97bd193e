"""How fresh raw API events are, relative to an as-of date: the gate in front of segment syncs
whose meaning depends on recent traffic (`requires_fresh_events`), of CRM pushes, and Dagster's
freshness check on the raw events.

An ingestion outage must not email customers (or tell sales) that they stopped calling the API,
whichever way the sync was started.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import sqlalchemy as sa

from onramp.errors import OnrampError
from onramp.settings import Settings

DEFAULT_MAX_EVENT_LAG_HOURS = 24


@dataclass(frozen=True)
class EventFreshness:
    """The latest raw event up to the end of the as-of day, and whether that is recent enough."""

    as_of: dt.date
    latest_event_at: dt.datetime | None
    max_lag_hours: float

    @property
    def as_of_end(self) -> dt.datetime:
        """First instant after the as-of day (UTC): events at or after it are ignored."""
        return dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    @property
    def lag_hours(self) -> float | None:
        if self.latest_event_at is None:
            return None
        return round((self.as_of_end - self.latest_event_at).total_seconds() / 3600, 1)

    @property
    def fresh(self) -> bool:
        return self.lag_hours is not None and self.lag_hours <= self.max_lag_hours

    def describe(self) -> str:
        """One line for logs, the command line and metadata."""
        if self.latest_event_at is None:
            return f"no raw API events up to the end of {self.as_of.isoformat()}"
        state = "fresh" if self.fresh else "stale"
        return (
            f"raw API events are {state}: latest {self.latest_event_at.isoformat()} is "
            f"{self.lag_hours}h before the end of as-of day {self.as_of.isoformat()} "
            f"(allowed: {self.max_lag_hours:g}h)"
        )


def max_event_lag_hours() -> int:
    """ONRAMP_MAX_EVENT_LAG_HOURS (default 24), the command line's twin of the Dagster config."""
    raw = os.environ.get("ONRAMP_MAX_EVENT_LAG_HOURS", "").strip()
    if not raw:
        return DEFAULT_MAX_EVENT_LAG_HOURS
    try:
        hours = int(raw)
    except ValueError:
        hours = -1
    if hours < 0:
        raise OnrampError(
            f"ONRAMP_MAX_EVENT_LAG_HOURS must be a whole number of hours, got {raw!r}"
        )
    return hours


def raw_events_freshness(
    bind: sa.Engine | sa.Connection, as_of: dt.date, max_lag_hours: float
) -> EventFreshness:
    """Read max(occurred_at) of raw.api_events up to the end of the as-of day (on an engine, or on
    a caller's connection).

    Late events (after the as-of day) are ignored, as every model ignores them; a missing raw
    table counts as no events.
    """
    if isinstance(bind, sa.Engine):
        with bind.connect() as conn:
            return raw_events_freshness(conn, as_of, max_lag_hours)
    latest = None
    if bind.execute(sa.text("select to_regclass('raw.api_events') is not null")).scalar():
        latest = bind.execute(
            sa.text("select max(occurred_at) from raw.api_events where occurred_at < :end"),
            {"end": EventFreshness(as_of, None, max_lag_hours).as_of_end},
        ).scalar()
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=dt.UTC)
    return EventFreshness(as_of=as_of, latest_event_at=latest, max_lag_hours=max_lag_hours)


def warehouse_events_freshness(
    engine: sa.Engine, as_of: dt.date, max_lag_hours: float, settings: Settings | None = None
) -> EventFreshness:
    """`raw_events_freshness` wherever the raw events are: PostgreSQL (`engine`), or the Spark
    warehouse when ONRAMP_WAREHOUSE=spark (the engine then holds only the sync state)."""
    settings = settings or Settings.from_env()
    if settings.warehouse != "spark":
        return raw_events_freshness(engine, as_of, max_lag_hours)
    return spark_events_freshness(settings, as_of, max_lag_hours)


def spark_events_freshness(
    settings: Settings, as_of: dt.date, max_lag_hours: float, *, table: str = "raw.api_events"
) -> EventFreshness:
    """`raw_events_freshness` for raw events that live on Spark (no table counts as no events)."""
    from onramp.spark import spark_session

    spark = spark_session(settings)
    end = EventFreshness(as_of, None, max_lag_hours).as_of_end
    latest = None
    if spark.catalog.tableExists(table):
        # micros since the epoch: pyspark would hand back a naive datetime in the Python
        # process's local zone
        query = (
            f"select unix_micros(max(occurred_at)) from {table} "
            f"where occurred_at < timestamp'{end.strftime('%Y-%m-%d %H:%M:%S')}+00:00'"
        )
        micros = None
        if "event_date" in spark.table(table).columns:
            # a partitioned table: read only the days the allowed lag reaches (every sync asks),
            # and all earlier days only when those hold nothing, to say how old the latest is
            first = as_of - dt.timedelta(days=int(max_lag_hours // 24) + 1)
            micros = spark.sql(
                f"{query} and event_date between date'{first}' and date'{as_of}'"
            ).first()[0]
        if micros is None:
            micros = spark.sql(query).first()[0]
        if micros is not None:
            latest = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    return EventFreshness(as_of=as_of, latest_event_at=latest, max_lag_hours=max_lag_hours)
