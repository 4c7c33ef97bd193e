"""Event times as epoch milliseconds, written as ISO 8601 text fast (once per event)."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def epoch_ms(d: date) -> int:
    """Midnight UTC of a date in epoch milliseconds."""
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


@functools.lru_cache(maxsize=512)
def _day_prefix(day_number: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day_number)).isoformat() + "T"


def iso_ms(ts_ms: int, zone: str = "Z") -> str:
    """ISO 8601 with milliseconds: zone 'Z', '' (no zone = UTC) or '+HH:MM' shifted accordingly.

    Formatted by arithmetic with a cached date prefix: this runs once per event.
    """
    if zone not in ("Z", ""):
        sign = 1 if zone[0] == "+" else -1
        ts_ms += sign * (int(zone[1:3]) * 60 + int(zone[4:6])) * 60_000
    day, ms = divmod(ts_ms, DAY_MS)
    minute, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{_day_prefix(day)}{_HH_MM[minute]}{s:02d}.{ms:03d}{zone}"


_HH_MM = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))


def offset_str(minutes: int) -> str:
    """A UTC offset in minutes as '+HH:MM'."""
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"
