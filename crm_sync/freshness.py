"""How fresh raw API events are against the as-of date: stale events hold a push back, so an
ingestion outage never tells sales that every developer stopped calling the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class EventFreshness:
    """How far the raw API events lag behind the end of the as-of day."""

    as_of: dt.date
    latest_event_at: dt.datetime | None
    max_lag_hours: float

    @property
    def lag_hours(self) -> float | None:
        if self.latest_event_at is None:
            return None
        end = dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return round((end - self.latest_event_at).total_seconds() / 3600, 1)

    @property
    def fresh(self) -> bool:
        return self.lag_hours is not None and self.lag_hours <= self.max_lag_hours

    def describe(self) -> str:
        if self.latest_event_at is None:
            return f"no raw API events up to the end of {self.as_of.isoformat()}"
        state = "fresh" if self.fresh else "stale"
        return (
            f"raw API events are {state}: the latest is {self.lag_hours}h before the end of "
            f"as-of day {self.as_of.isoformat()} (allowed: {self.max_lag_hours:g}h)"
        )


def raw_events_freshness(
    conn: sa.Connection, as_of: dt.date, max_lag_hours: float
) -> EventFreshness:
    """max(occurred_at) of raw.api_events up to the end of the as-of day (later events are
    ignored, as every model ignores them); a missing raw table counts as no events."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    latest = None
    if conn.execute(sa.text("select to_regclass('raw.api_events') is not null")).scalar():
        latest = conn.execute(
            sa.text("select max(occurred_at) from raw.api_events where occurred_at < :end"),
            {"end": end},
        ).scalar()
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=dt.UTC)
    return EventFreshness(as_of=as_of, latest_event_at=latest, max_lag_hours=max_lag_hours)
