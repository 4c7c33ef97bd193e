"""The reference evaluator: the funnel and segment rules restated in plain Python.

A second, independent implementation of docs/segments.md, fed with the events exactly as the
generator writes them (duplicates once, events after the as-of day ignored). Its output is the
truth the dbt models are checked against, so it must never share code with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sample_data.timestamps import DAY_MS, epoch_ms

MIN_DAYS = 14  # stopped_traffic looks back to as-of - 13


# Segment names in the order of docs/segments.md; expected_segments lists them in this order.
SEGMENTS = (
    "new_signups",
    "signup_no_calls_7d",
    "stage_not_integrated",
    "stage_sandbox",
    "stage_production",
    "stopped_traffic",
    "unused_feature",
    "quota_warning",
    "quota_exceeded",
    "rate_limited",
    "incident_affected",
)

# Funnel and segment defaults of docs/segments.md (the dbt vars' defaults).
STAGE_WINDOW_DAYS = 7
PRODUCTION_DAILY_EVENTS = 1000
WELCOME_WINDOW_DAYS = 3
SIGNUP_NO_CALLS_DAYS = 7
UNUSED_FEATURE_DAYS = 30
RATE_LIMIT_ALERT_429S = 20

_HEX = re.compile(r"^[0-9a-fA-F]{16,}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def normalize_route(path: str) -> str:
    """The route template of a request path (docs/segments.md): query dropped, ids become {id}."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    parts = path.split("/")
    return "/".join(
        "{id}" if p and (p.isdigit() or _UUID.match(p) or _HEX.match(p)) else p for p in parts
    )


def like_match(value: str, pattern: str) -> bool:
    """SQL LIKE (% and _, no escapes), so incident routes match the way the warehouse does."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


@dataclass(frozen=True)
class Incident:
    """A generated API incident on one route, for the incident segment rules."""

    incident_id: str
    title: str
    started_ms: int
    ended_ms: int
    affected_route: str

    def matches(self, route: str) -> bool:
        return route == self.affected_route or like_match(route, self.affected_route)


@dataclass
class _DevStats:
    has_success: bool = False
    last_ms: int = -1
    window_count: int = 0
    mtd_count: int = 0
    as_of_429s: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    incidents: list[str] = field(default_factory=list)


class SegmentEvaluator:
    """The funnel and segment rules of docs/segments.md, applied to events one at a time.

    Feed each distinct event once (`add`); events after the as-of day are ignored here, as the
    warehouse must. `members()` then gives the expected (segment, developer_id, detail) rows.
    Kept independent from the generator's intentions so the truth it produces can be trusted.
    """

    def __init__(self, as_of: date, promoted_routes: Iterable[str], incidents: Iterable[Incident]):
        self.as_of = as_of
        a0 = epoch_ms(as_of)
        self.end_ms = a0 + DAY_MS
        self.window_start = a0 - (STAGE_WINDOW_DAYS - 1) * DAY_MS
        self.stopped_lo = a0 - 13 * DAY_MS
        self.stopped_hi = a0 - 6 * DAY_MS  # exclusive: the last call's day is <= as-of - 7
        self.recent30 = a0 - (UNUSED_FEATURE_DAYS - 1) * DAY_MS
        self.month_start = as_of.replace(day=1)
        self.month_ms = epoch_ms(self.month_start)
        self.as_of_ms = a0
        self.promoted = sorted(promoted_routes)
        self.incidents = list(incidents)
        self.incidents_from = min((i.started_ms for i in self.incidents), default=0)
        self.incidents_to = max((i.ended_ms for i in self.incidents), default=-1)
        self.stats: dict[str, _DevStats] = {}

    def add(self, developer_id: str, ts_ms: int, route: str, status: int) -> None:
        """Count one distinct event (route already normalised)."""
        if ts_ms >= self.end_ms:
            return
        s = self.stats.get(developer_id)
        if s is None:
            s = self.stats[developer_id] = _DevStats()
        if status < 400:
            s.has_success = True
        if ts_ms > s.last_ms:
            s.last_ms = ts_ms
        if ts_ms >= self.window_start:
            s.window_count += 1
            if ts_ms >= self.as_of_ms and status == 429:
                s.as_of_429s += 1
        if ts_ms >= self.month_ms:
            s.mtd_count += 1
        s.routes[route] = s.routes.get(route, 0) + 1
        if not self.incidents_from <= ts_ms <= self.incidents_to:
            return
        for inc in self.incidents:
            if (
                inc.started_ms <= ts_ms <= inc.ended_ms
                and inc.incident_id not in s.incidents
                and inc.matches(route)
            ):
                s.incidents.append(inc.incident_id)

    def mtd_count(self, developer_id: str) -> int:
        s = self.stats.get(developer_id)
        return s.mtd_count if s else 0

    def stage(self, developer_id: str) -> str:
        s = self.stats.get(developer_id)
        if s is None or not s.has_success:
            return "not_integrated"
        if s.window_count == 0:
            return "dormant"
        if s.window_count > PRODUCTION_DAILY_EVENTS * STAGE_WINDOW_DAYS:
            return "production"
        return "sandbox"

    def members(
        self, developers: Iterable[tuple[str, int, int | None]]
    ) -> list[tuple[str, str, str]]:
        """(segment, developer_id, detail) for developers given as (id, signed_up_ms, quota)."""
        a0 = self.as_of_ms
        rows: list[tuple[str, str, str]] = []
        for dev_id, signup_ms, quota in developers:
            s = self.stats.get(dev_id) or _DevStats()
            called = s.last_ms >= 0
            if a0 - (WELCOME_WINDOW_DAYS - 1) * DAY_MS <= signup_ms < self.end_ms:
                rows.append(("new_signups", dev_id, ""))
            in_7d = a0 - (SIGNUP_NO_CALLS_DAYS - 1) * DAY_MS <= signup_ms < self.end_ms
            if in_7d and not called:
                rows.append(("signup_no_calls_7d", dev_id, ""))
            stage = self.stage(dev_id)
            if stage != "dormant":
                rows.append((f"stage_{stage}", dev_id, ""))
            if called and self.stopped_lo <= s.last_ms < self.stopped_hi:
                top = min(s.routes.items(), key=lambda kv: (-kv[1], kv[0]))[0]
                rows.append(("stopped_traffic", dev_id, top))
            if called and s.last_ms >= self.recent30:
                for route in self.promoted:
                    if route not in s.routes:
                        rows.append(("unused_feature", dev_id, route))
            if quota is not None and quota > 0:
                month = self.month_start.isoformat()
                if s.mtd_count > quota:
                    rows.append(("quota_exceeded", dev_id, month))
                elif 5 * s.mtd_count >= 4 * quota:
                    rows.append(("quota_warning", dev_id, month))
            if s.as_of_429s >= RATE_LIMIT_ALERT_429S:
                rows.append(("rate_limited", dev_id, self.as_of.isoformat()))
            for incident_id in s.incidents:
                rows.append(("incident_affected", dev_id, incident_id))
        order = {name: i for i, name in enumerate(SEGMENTS)}
        rows.sort(key=lambda r: (order[r[0]], r[1], r[2]))
        return rows
