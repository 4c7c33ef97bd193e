"""The as-of day, in one place: the last complete UTC day a build or sync describes.

Dagster's daily partitions, the dbt var `as_of_date` and `onramp build/sync --as-of` are the same
thing: a partition key is the as-of day written YYYY-MM-DD, so a backfill of partition D in the UI
and `onramp build --as-of D` do the same work. Every default ("yesterday in UTC"), every parse and
the start of the partitions come from here.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import click

from onramp.errors import OnrampError

# The first daily partition. Early enough for the tests' and the sample data's days; a warehouse
# with older history sets ONRAMP_PARTITIONS_START to its first day.
PARTITIONS_START_ENV = "ONRAMP_PARTITIONS_START"
DEFAULT_PARTITIONS_START = dt.date(2026, 1, 1)
KEY_FORMAT = "%Y-%m-%d"


class AsOfError(OnrampError):
    """An as-of day that is not a date, or that lies outside the daily partitions."""


def yesterday_utc(now: dt.datetime | None = None) -> dt.date:
    """The last complete UTC day at `now` (default: the current time)."""
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC)
    return now.date() - dt.timedelta(days=1)


def parse_as_of(value: str | dt.date | dt.datetime | None) -> dt.date:
    """A day from 'YYYY-MM-DD', a date or a datetime; None or empty: yesterday in UTC."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value is None or not str(value).strip():
        return yesterday_utc()
    try:
        return dt.datetime.strptime(str(value).strip(), KEY_FORMAT).date()
    except ValueError as exc:
        raise AsOfError(f"as-of day must be YYYY-MM-DD, got {value!r}") from exc


def to_partition_key(as_of: dt.date) -> str:
    """The daily partition key of an as-of day (the dbt var takes the same text)."""
    return as_of.strftime(KEY_FORMAT)


def from_partition_key(key: str) -> dt.date:
    """The as-of day a daily partition key names."""
    return parse_as_of(key) if key else yesterday_utc()


def partitions_start() -> dt.date:
    """The first daily partition: ONRAMP_PARTITIONS_START, else 2026-01-01."""
    raw = (os.environ.get(PARTITIONS_START_ENV) or "").strip()
    try:
        return parse_as_of(raw) if raw else DEFAULT_PARTITIONS_START
    except AsOfError as exc:
        raise AsOfError(f"{PARTITIONS_START_ENV} must be YYYY-MM-DD, got {raw!r}") from exc


def check_in_partitions(as_of: dt.date) -> dt.date:
    """The day itself when a daily partition exists for it; a one-line error otherwise."""
    start = partitions_start()
    if as_of < start:
        raise AsOfError(
            f"as-of day {as_of.isoformat()} is before the first partition {start.isoformat()} "
            f"(set {PARTITIONS_START_ENV})"
        )
    if as_of > yesterday_utc():
        raise AsOfError(
            f"as-of day {as_of.isoformat()} is not complete yet (latest: {yesterday_utc()})"
        )
    return as_of


class AsOfParam(click.ParamType):
    """`--as-of YYYY-MM-DD` of every command: parsed here, a usage error names the option."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The day, or a usage error ("Invalid value for '--as-of': ...")."""
        if value is None or isinstance(value, dt.date):
            return value
        try:
            return parse_as_of(value)
        except AsOfError as exc:
            self.fail(str(exc), param, ctx)


AS_OF = AsOfParam()
