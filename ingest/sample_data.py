"""Deterministic sample data: developers, an endpoint catalog, incidents and API traffic.

The data exists so every later stage (loader, dbt segments, email) can be exercised and checked
without a real product behind it. Three properties matter more than realism:

* Determinism: the same (seed, as_of, sizes) gives byte-identical files, so a failing test or a
  surprising segment can be reproduced anywhere. One `random.Random(seed)` drives everything in a
  fixed order, nothing iterates a set, and the gzip header carries mtime 0.
* Coverage: developers are drawn from archetypes (never integrates, hello world only, sandbox,
  production, dormant, stopped traffic, quota, rate limited, incident, ...) plus boundary cases
  (a signup exactly at the window edge, exactly 7000 events in 7 days, exactly 20 429s, ...), so
  every segment of DESIGN.md has members, and its edges are tested, on the as-of day.
* Trustworthy truth: `archetypes.csv` and `expected_members.csv` are computed by
  `SegmentEvaluator`, a small pure-Python restatement of DESIGN.md's funnel and segment rules fed
  with the events exactly as written (duplicates once, late events after as-of ignored), not by
  what an archetype was meant to do.

Output is streamed: a day of traffic is generated, sorted and written before the next, so memory
is bounded by one day's volume whatever `days` is.

Files written to out_dir:

* developers.csv, endpoints.csv, incidents.jsonl: reference data (a few developers appear twice;
  the later row wins, as DESIGN.md says).
* api_events.jsonl.gz (most events, canonical JSONL; ~3% of timestamps carry a non-UTC offset),
  api_events.csv (canonical CSV, timestamps without zone, some rows without event_id),
  moesif_events.json (a Moesif JSON array; the canonical event id is in `transaction_id`) and
  access.log (Apache combined; remote user = developer_id, or "-" with an `api_key` query
  parameter holding it). Each event is in exactly one file, apart from deliberate duplicates
  (identical record again, or a JSONL event repeated in the CSV with the same event_id).
* manifest.json: as_of, seed, sizes, `files` (path, kind, format, caller, rows) in load order,
  `truth`, event counts and expected member counts per segment.
* archetypes.csv (developer_id, archetype, expected_segments: space-separated, DESIGN.md order)
  and expected_members.csv (segment, developer_id, detail: the promoted route for unused_feature,
  the incident_id for incident_affected, top_route for stopped_traffic, the month start for quota
  segments, the as-of date for rate_limited).
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import functools
import gzip
import io
import json
import logging
import math
import random
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path

import click

from onramp.errors import OnrampError

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_DAYS = 14  # stopped_traffic looks back to as-of - 13

# Segment names in DESIGN.md order; expected_segments lists them in this order.
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

# Funnel and segment defaults of DESIGN.md (the dbt vars' defaults).
STAGE_WINDOW_DAYS = 7
PRODUCTION_DAILY_EVENTS = 1000
WELCOME_WINDOW_DAYS = 3
SIGNUP_NO_CALLS_DAYS = 7
UNUSED_FEATURE_DAYS = 30
RATE_LIMIT_ALERT_429S = 20

ROLES = (
    "engineering",
    "product",
    "marketing",
    "customer_success",
    "developer_relations",
    "sales",
    "support",
    "executive",
)
ROLE_WEIGHTS = (40, 12, 6, 5, 6, 6, 5, 8, 12)  # last: empty role (unknown)

PLAN_QUOTAS = {"free": 10_000, "startup": 100_000, "growth": 1_000_000, "enterprise": None}

API_HOST = "https://api.onramp.example"
DOCS = "https://docs.onramp.example/api"

# (IANA zone, standard UTC offset in minutes, weight). The offset shapes the working-hours curve
# and is used to write some timestamps with a non-UTC offset; it need not follow DST to be valid.
TIMEZONES = (
    ("America/New_York", -300, 14),
    ("America/Los_Angeles", -480, 12),
    ("America/Chicago", -360, 6),
    ("America/Toronto", -300, 3),
    ("America/Sao_Paulo", -180, 4),
    ("Europe/London", 0, 8),
    ("Europe/Berlin", 60, 7),
    ("Europe/Paris", 60, 4),
    ("Europe/Madrid", 60, 3),
    ("Europe/Warsaw", 60, 2),
    ("Africa/Lagos", 60, 2),
    ("Asia/Kolkata", 330, 9),
    ("Asia/Singapore", 480, 4),
    ("Asia/Shanghai", 480, 3),
    ("Asia/Tokyo", 540, 4),
    ("Australia/Sydney", 600, 3),
    ("UTC", 0, 2),
)

FIRST_NAMES = (
    "Ava", "Noah", "Mia", "Liam", "Sofia", "Mateo", "Aisha", "Kenji", "Priya", "Lucas", "Chloé",
    "José", "Zoë", "Søren", "Amara", "Diego", "Hana", "Omar", "Ingrid", "Wei", "Fatima", "Ethan",
    "Nia", "Rahul", "Elena", "Tomás", "Yuki", "Olivia", "Kwame", "Leila", "Marta", "Arjun", "Grace",
    "Björn", "Camila", "Dmitri", "Emeka", "Freya", "Gabriel", "Ines",
)  # fmt: skip
LAST_NAMES = (
    "Nguyen", "Smith", "García", "Müller", "Okafor", "Tanaka", "Patel", "Rossi", "Kowalski",
    "Johansson", "Silva", "Chen", "O'Brien", "Dubois", "Haddad", "Kim", "Novak", "Mensah",
    "Ivanova", "Fernández", "Larsen", "Sato", "Brown", "Cohen", "Adeyemi", "Schmidt", "Moreau",
    "Singh",
)  # fmt: skip
COMPANY_WORDS = (
    "Acme", "Northwind", "Bluebird", "Lumen", "Parcel", "Kite", "Harbor", "Quanta", "Fable",
    "Orbit", "Cedar", "Nimbus", "Sparrow", "Tandem", "Vertex", "Willow", "Zephyr", "Ember",
)  # fmt: skip
COMPANY_KINDS = (
    "Logistics", "Health", "Labs", "Payments", "Commerce", "Analytics", "Travel", "Robotics",
    "Media", "Finance", "Foods", "Learning",
)  # fmt: skip
COMPANY_SUFFIXES = ("Inc.", "Ltd", "GmbH", "", "", "", "Co.", "SAS")

SDKS = (
    ("onramp-python/{v} (CPython 3.12)", ("2.4.1", "2.5.0", "2.6.3")),
    ("onramp-node/{v} (Node.js v20.11.1)", ("1.9.0", "1.10.2", "1.11.0")),
    ("onramp-go/{v}", ("0.14.2", "0.15.0")),
    ("onramp-ruby/{v}", ("1.3.0",)),
    ("onramp-java/{v} (OpenJDK 21)", ("3.2.1", "3.3.0")),
    ("curl/{v}", ("8.5.0", "7.88.1")),
    ("PostmanRuntime/{v}", ("7.36.3", "7.39.0")),
)
SDK_WEIGHTS = (30, 25, 10, 5, 8, 12, 10)


@dataclass(frozen=True)
class Route:
    """A route template of the sample API and how callers use it."""

    template: str
    methods: tuple[str, ...]
    id_kinds: tuple[str, ...]  # one per {id}: num | uuid | hex32 | hex40
    feature: str | None  # None: not in the endpoint catalog
    weight: int
    promoted: bool = False
    queries: tuple[str, ...] = ()


ROUTES: tuple[Route, ...] = (
    Route("/v1/me", ("GET",), (), "Account", 5),
    Route("/v1/oauth/token", ("POST",), (), "Authentication", 3),
    Route(
        "/v1/users", ("GET", "GET", "POST"), (), "Users", 6,
        queries=("limit=50", "page=2&per_page=100", "email=someone%40example.com"),
    ),
    Route("/v1/users/{id}", ("GET", "GET", "PATCH", "DELETE"), ("num",), "Users", 8),
    Route("/v1/users/{id}/keys/{id}", ("GET", "DELETE"), ("num", "hex32"), "API keys", 2),
    Route(
        "/v1/messages", ("POST", "POST", "GET"), (), "Messaging", 10,
        queries=("limit=20", "status=failed&limit=100"),
    ),
    Route("/v1/messages/{id}", ("GET",), ("uuid",), "Messaging", 8),
    Route("/v1/messages/{id}/events", ("GET",), ("uuid",), "Message events", 3),
    Route("/v1/payments", ("POST", "GET"), (), "Payments", 5,
          queries=("created_after=2024-01-01",)),
    Route("/v1/payments/{id}", ("GET",), ("num",), "Payments", 5),
    Route("/v1/payments/{id}/refunds", ("POST",), ("num",), "Refunds", 1),
    Route("/v1/webhooks", ("GET", "POST"), (), "Webhooks", 2, promoted=True),
    Route("/v1/webhooks/{id}", ("GET", "PUT", "DELETE"), ("uuid",), "Webhooks", 2),
    Route("/v1/webhooks/{id}/deliveries", ("GET",), ("uuid",), "Webhook deliveries", 1,
          queries=("status=failed",)),
    Route("/v1/files", ("POST",), (), "Files", 2),
    Route("/v1/files/{id}", ("GET",), ("hex40",), "Files", 3),
    Route("/v1/search", ("GET",), (), "Search", 5,
          queries=("q=invoice+overdue&limit=20", "q=refund", "q=user%3A42&sort=desc")),
    Route("/v1/sessions/{id}", ("GET", "DELETE"), ("hex32",), "Sessions", 2),
    Route("/v1/batch", ("POST",), (), "Batch API", 2, promoted=True),
    Route("/v1/reports/{id}/export", ("POST", "GET"), ("num",), "Report exports", 1, promoted=True),
    Route("/v1/usage", ("GET",), (), "Usage", 2, queries=("month=current",)),
    Route("/v0/status", ("GET",), (), None, 1),  # legacy, not in the catalog
)  # fmt: skip
ROUTE_INDEX = {r.template: i for i, r in enumerate(ROUTES)}
TEMPLATES = tuple(r.template for r in ROUTES)
PROMOTED = tuple(r.template for r in ROUTES if r.promoted)
ME, OAUTH = ROUTE_INDEX["/v1/me"], ROUTE_INDEX["/v1/oauth/token"]
# Route groups a developer picks from: a feature area uses all its routes.
FEATURE_GROUPS = (
    ("/v1/users", "/v1/users/{id}"),
    ("/v1/users/{id}/keys/{id}",),
    ("/v1/messages", "/v1/messages/{id}", "/v1/messages/{id}/events"),
    ("/v1/payments", "/v1/payments/{id}", "/v1/payments/{id}/refunds"),
    ("/v1/webhooks/{id}", "/v1/webhooks/{id}/deliveries"),
    ("/v1/files", "/v1/files/{id}"),
    ("/v1/search",),
    ("/v1/sessions/{id}",),
    ("/v1/usage",),
    ("/v0/status",),
)

# Status mixes: (status, weight per 1000); status 0 = the success status of the method.
_BASE_STATUSES = ((0, 925), (400, 15), (401, 10), (403, 5), (404, 25), (409, 3), (422, 7),
                  (500, 5), (502, 2), (503, 3))  # fmt: skip
_BUSY_STATUSES = _BASE_STATUSES + ((429, 3),)
SUCCESS = {"GET": 200, "POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}

_HEX = re.compile(r"^[0-9a-fA-F]{16,}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DEVELOPER_COLUMNS = (
    "developer_id", "email", "name", "company_id", "company_name", "role", "signed_up_at", "plan",
    "monthly_quota", "timezone", "marketing_opt_in",
)  # fmt: skip
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def normalize_route(path: str) -> str:
    """The route template of a request path, by DESIGN.md: query dropped, ids become {id}."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    parts = path.split("/")
    return "/".join(
        "{id}" if p and (p.isdigit() or _UUID.match(p) or _HEX.match(p)) else p for p in parts
    )


def like_match(value: str, pattern: str) -> bool:
    """SQL LIKE (% and _, no escapes), so incident routes match the way the warehouse does."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _cum(weights: Iterable[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _epoch_ms(d: date) -> int:
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


_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _csv_field(value: str) -> str:
    """One CSV field as csv.writer's QUOTE_MINIMAL writes it (faster for one row at a time)."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _offset_str(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


# --------------------------------------------------------------------------------------------
# The reference evaluator: DESIGN.md's rules over a stream of events.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """A generated service incident (times in epoch milliseconds)."""

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
    """DESIGN.md's funnel and segment rules, applied to events one at a time.

    Feed each distinct event once (`add`); events after the as-of day are ignored here, as the
    warehouse must. `members()` then gives the expected (segment, developer_id, detail) rows.
    Kept independent from the generator's intentions so the truth it produces can be trusted.
    """

    def __init__(self, as_of: date, promoted_routes: Iterable[str], incidents: Iterable[Incident]):
        self.as_of = as_of
        a0 = _epoch_ms(as_of)
        self.end_ms = a0 + DAY_MS
        self.window_start = a0 - (STAGE_WINDOW_DAYS - 1) * DAY_MS
        self.stopped_lo = a0 - 13 * DAY_MS
        self.stopped_hi = a0 - 6 * DAY_MS  # exclusive: the last call's day is <= as-of - 7
        self.recent30 = a0 - (UNUSED_FEATURE_DAYS - 1) * DAY_MS
        self.month_start = as_of.replace(day=1)
        self.month_ms = _epoch_ms(self.month_start)
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


# --------------------------------------------------------------------------------------------
# Developers and their plans
# --------------------------------------------------------------------------------------------


@dataclass
class _Dev:
    idx: int
    developer_id: str
    archetype: str
    email: str
    name: str
    company_id: str
    company_name: str
    role: str
    signup_ms: int
    plan: str
    quota: int | None
    tz: str
    tz_offset: int
    opt_in: bool
    ua: str
    keys: tuple[str, str]  # sandbox, production
    ips: tuple[str, ...]
    region: str | None
    busy_statuses: bool = False
    prod_from: int | None = None  # day offset from which traffic is production environment
    prod_ts: float = math.inf  # the same as an instant
    quota_rule: str | None = None  # warning | exceeded | edge_100 | edge_101 | edge_80
    earlier_row: dict[str, str] | None = None
    # day offset -> [n_normal, lo_ms, hi_ms, specials]; special = (ms_in_day, route, method, status)
    days: dict[int, list] = field(default_factory=dict)
    route_idx: list[int] = field(default_factory=list)
    route_cum: list[float] = field(default_factory=list)
    paths: dict[int, list[str]] = field(default_factory=dict)
    hour_cum: list[float] = field(default_factory=list)


# Archetype shares of all developers; every archetype gets at least one developer, then come the
# boundary cases (EDGE_CASES), then the shares; "sandbox" takes the rest.
ARCHETYPES = (
    ("production", 0.025),
    ("never_integrates", 0.10),
    ("signup_no_calls", 0.03),
    ("new_signup_idle", 0.03),
    ("new_signup_active", 0.03),
    ("hello_world_only", 0.08),
    ("never_succeeds", 0.04),
    ("dormant", 0.08),
    ("stopped_traffic", 0.06),
    ("quota_exceeded", 0.03),
    ("quota_warning", 0.03),
    ("rate_limited", 0.03),
    ("incident_caught", 0.04),
    ("adopter", 0.06),
    ("sandbox", 0.0),  # the rest
)
EDGE_CASES = (
    "edge_new_signup_in",
    "edge_new_signup_out",
    "edge_no_calls_7d_in",
    "edge_no_calls_7d_out",
    "edge_late_calls_only",
    "edge_stopped_in_7",
    "edge_stopped_out_6",
    "edge_stopped_in_13",
    "edge_stopped_out_14",
    "edge_production_7001",
    "edge_sandbox_7000",
    "edge_rate_limited_20",
    "edge_rate_limited_19",
    "edge_incident_in",
    "edge_incident_out",
    "edge_quota_100",
    "edge_quota_101",
    "edge_quota_80",
    "edge_quota_replaced_row",
    "edge_recent_30_in",
    "edge_recent_30_out",
)
# Archetypes that send a few calls on the day after as-of (which every rule must ignore).
LATE_DAY_ARCHETYPES = ("edge_late_calls_only", "edge_stopped_in_7", "edge_rate_limited_19",
                       "edge_quota_100", "sandbox")  # fmt: skip


def _allocate(n: int, days: int) -> list[str]:
    """Archetype per developer slot: one of each core archetype, the boundary cases, the rest
    by share. Deterministic; shuffled later with the seeded generator."""
    edges = [e for e in EDGE_CASES if _edge_fits(e, days)]
    core = [name for name, _ in ARCHETYPES]
    out: list[str] = core[:n]
    out += edges[: max(0, n - len(out))]
    rest = n - len(out)
    if rest > 0:
        total = n
        for name, share in ARCHETYPES:
            extra = max(0, round(share * total) - 1)
            extra = min(extra, n - len(out))
            out += [name] * extra
        out += ["sandbox"] * (n - len(out))
    return out


def _edge_fits(edge: str, days: int) -> bool:
    need = {"edge_stopped_out_14": 16, "edge_recent_30_in": 31, "edge_recent_30_out": 32}
    return days >= need.get(edge, MIN_DAYS)


class _Generator:
    def __init__(self, out_dir: Path, developers: int, days: int, seed: int, as_of: date):
        self.out = out_dir
        self.n = developers
        self.days = days
        self.seed = seed
        self.as_of = as_of
        self.rng = random.Random(seed)
        self.a0 = _epoch_ms(as_of)
        self.first_off = -(days - 1)
        self.incidents = self._incidents()
        self.evaluator = SegmentEvaluator(as_of, PROMOTED, self.incidents)
        self.devs: list[_Dev] = []
        self.rows = {
            "api_events.jsonl.gz": 0,
            "api_events.csv": 0,
            "moesif_events.json": 0,
            "access.log": 0,
        }
        self.distinct_events = 0
        self.duplicates = 0
        self.late_out_of_order = 0
        self.after_as_of = 0
        # Lookup tables instead of drawing from distributions per event (the hot path).
        self.lat_table = [int(self.rng.lognormvariate(math.log(35), 0.6)) + 1 for _ in range(4096)]
        self.size_table = [int(self.rng.lognormvariate(math.log(1800), 1.0)) for _ in range(4096)]

    # ---- reference data ------------------------------------------------------------------

    def _incidents(self) -> list[Incident]:
        """Three incidents: one old, one yesterday (route template), one on as-of (LIKE)."""
        old_off = -min(20, self.days - 2)

        def at(off: int, hh: int, mm: int) -> int:
            return self.a0 + off * DAY_MS + hh * HOUR_MS + mm * 60_000

        return [
            Incident(
                "INC-1042", "Payments API latency above 5 s", at(old_off, 7, 10),
                at(old_off, 8, 25), "/v1/payments/{id}",
            ),
            Incident(
                "INC-1057", "Elevated 5xx when sending messages", at(-1, 14, 5),
                at(-1, 15, 47), "/v1/messages",
            ),
            Incident(
                "INC-1063", "Webhook endpoints returning 503", at(0, 9, 0),
                at(0, 9, 45), "/v1/webhooks/%",
            ),
        ]  # fmt: skip

    # ---- developers ----------------------------------------------------------------------

    def _make_devs(self) -> None:
        rng = self.rng
        slots = _allocate(self.n, self.days)
        rng.shuffle(slots)
        companies: list[tuple[str, str, str]] = []
        tz_cum = _cum(w for _, _, w in TIMEZONES)
        role_cum = _cum(ROLE_WEIGHTS)
        sdk_cum = _cum(SDK_WEIGHTS)
        used_ids: set[str] = set()
        for idx, archetype in enumerate(slots):
            while True:
                dev_id = "dev_" + "".join(rng.choices("abcdefghjkmnpqrstuvwxyz23456789", k=10))
                if dev_id not in used_ids:
                    used_ids.add(dev_id)
                    break
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if companies and rng.random() < 0.35:
                company_id, company_name, domain = rng.choice(companies)
            elif rng.random() < 0.08:
                company_id, company_name, domain = "", "", "mail.example"
            else:
                word, kind = rng.choice(COMPANY_WORDS), rng.choice(COMPANY_KINDS)
                suffix = rng.choice(COMPANY_SUFFIXES)
                company_name = f"{word} {kind}" + (f" {suffix}" if suffix else "")
                if rng.random() < 0.05:
                    company_name = f"{word}, {kind} & Partners"  # a comma to quote in CSV
                company_id = f"cmp_{rng.getrandbits(32):08x}"
                domain = f"{word}-{kind}".lower() + ".example"
                companies.append((company_id, company_name, domain))
            local = _ascii(f"{first}.{last}").lower().replace("'", "")
            email = f"{local}{rng.randrange(10, 99) if rng.random() < 0.2 else ''}@{domain}"
            # All 8 roles among the first developers, then the plausible mix.
            role_i = idx if idx < 9 else bisect.bisect(role_cum, rng.random() * role_cum[-1])
            role = (ROLES + ("",))[role_i]
            tz, tz_offset, _ = TIMEZONES[bisect.bisect(tz_cum, rng.random() * tz_cum[-1])]
            plan = rng.choices(("free", "startup", "growth", "enterprise"), (55, 25, 14, 6))[0]
            sdk, versions = SDKS[bisect.bisect(sdk_cum, rng.random() * sdk_cum[-1])]
            ua = sdk.format(v=rng.choice(versions))
            keys = (f"key_test_{rng.getrandbits(48):012x}", f"key_live_{rng.getrandbits(48):012x}")
            ips = tuple(self._ip() for _ in range(rng.randint(1, 3)))
            region = (
                rng.choice(("us-east-1", "eu-west-1", "ap-south-1")) if rng.random() < 0.3 else None
            )
            dev = _Dev(
                idx=idx, developer_id=dev_id, archetype=archetype, email=email,
                name=f"{first} {last}", company_id=company_id, company_name=company_name,
                role=role, signup_ms=0, plan=plan, quota=PLAN_QUOTAS[plan], tz=tz,
                tz_offset=tz_offset, opt_in=rng.random() < 0.8, ua=ua, keys=keys, ips=ips,
                region=region,
            )  # fmt: skip
            if dev.quota is not None and rng.random() < 0.05:
                dev.quota = None  # legacy contract without a quota
            self._plan(dev)
            self._routes(dev)
            self._hours(dev)
            self.devs.append(dev)

    def _ip(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.1:
            return f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
        net = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
        return f"{net}.{rng.randint(1, 254)}"

    def _routes(self, dev: _Dev) -> None:
        """Which routes a developer calls, with weights; ids in paths come from a small pool so
        the same resources are read again and again, as real clients do."""
        rng = self.rng
        groups = rng.sample(range(len(FEATURE_GROUPS)), rng.randint(2, 5))
        templates = ["/v1/me", "/v1/oauth/token"]
        for g in sorted(groups):
            templates += FEATURE_GROUPS[g]
        if dev.archetype == "adopter":
            templates += PROMOTED
        for route in PROMOTED:
            if dev.archetype != "adopter" and rng.random() < 0.2:
                templates.append(route)
        if dev.archetype.startswith("edge_incident"):  # only the specials touch incident routes
            templates = [
                t for t in templates if not any(inc.matches(t) for inc in self.incidents)
            ] or ["/v1/me"]
        seen: list[int] = []
        for t in templates:
            i = ROUTE_INDEX[t]
            if i not in seen:
                seen.append(i)
        dev.route_idx = seen
        dev.route_cum = _cum(ROUTES[i].weight * rng.uniform(0.3, 2.0) for i in seen)
        for i in range(len(ROUTES)):
            dev.paths[i] = [self._path(ROUTES[i]) for _ in range(6 if ROUTES[i].id_kinds else 1)]

    def _path(self, route: Route) -> str:
        rng = self.rng
        parts = route.template.split("{id}")
        out = parts[0]
        for kind, tail in zip(route.id_kinds, parts[1:], strict=True):
            if kind == "num":
                value = str(rng.randint(1, 9_999_999))
            elif kind == "uuid":
                h = f"{rng.getrandbits(128):032x}"
                value = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"
            elif kind == "hex32":
                value = f"{rng.getrandbits(128):032x}"
            else:
                value = f"{rng.getrandbits(160):040x}"
            out += value + tail
        return out

    def _hours(self, dev: _Dev) -> None:
        """Working hours in the developer's zone for people; servers call around the clock."""
        weights = []
        for h in range(24):
            local = (h + dev.tz_offset / 60) % 24
            if dev.archetype == "production" or dev.archetype.endswith(("7000", "7001")):
                weights.append(1.0)
            elif 9 <= local < 18:
                weights.append(4.0)
            elif 7 <= local < 22:
                weights.append(1.5)
            else:
                weights.append(0.3)
        dev.hour_cum = _cum(weights)

    # ---- traffic plans -------------------------------------------------------------------

    def _day(self, dev: _Dev, off: int) -> list:
        plan = dev.days.get(off)
        if plan is None:
            plan = dev.days[off] = [0, 0, DAY_MS, []]
        return plan

    def _steady(self, dev: _Dev, start: int, end: int, median: float, p_active: float) -> None:
        """Human-paced use: most weekdays, fewer weekend days, a lognormal count per day."""
        rng = self.rng
        for off in range(start, end + 1):
            weekday = (self.as_of + timedelta(days=off)).weekday()
            if rng.random() < p_active * (0.45 if weekday >= 5 else 1.0):
                self._day(dev, off)[0] += max(1, int(rng.lognormvariate(math.log(median), 0.7)))

    def _hello_world(self, dev: _Dev, off: int, after_ms: int) -> int:
        """A few failing first tries then the first success; returns the success time in day."""
        rng = self.rng
        t = after_ms
        plan = self._day(dev, off)
        tries = [(ME, "GET", 401), (ME, "GET", 401), (OAUTH, "POST", 400), (ME, "GET", 403)]
        for route, method, status in tries[: rng.choice((0, 1, 1, 2, 2, 3, 4))]:
            plan[3].append((t, route, method, status))
            t += rng.randint(15_000, 240_000)
        plan[3].append((t, ME, "GET", 200))
        plan[1] = max(plan[1], t + 1000)
        return t

    def _signup_then_hello(self, dev: _Dev, signup_off: int) -> int:
        """Sign up on a day, first success minutes to a day later; returns the first day."""
        rng = self.rng
        signup_in_day = rng.randint(0, DAY_MS - 2 * HOUR_MS)
        dev.signup_ms = self.a0 + signup_off * DAY_MS + signup_in_day
        start = signup_in_day + rng.randint(2 * 60_000, 90 * 60_000)
        self._hello_world(dev, signup_off, start)
        return signup_off

    def _signup_before(self, dev: _Dev, lo: int, hi: int) -> None:
        off = self.rng.randint(lo, hi)
        dev.signup_ms = self.a0 + off * DAY_MS + self.rng.randint(0, DAY_MS - 1)

    def _active_user(self, dev: _Dev, last: int = 0, median: float = 35.0) -> int:
        """Signed up in or before the window, used the API steadily until `last`."""
        rng = self.rng
        w0 = self.first_off
        if rng.random() < 0.5:
            self._signup_before(dev, w0 - 30, w0 - 1)
            first = w0
        else:
            first = rng.randint(w0, max(w0, min(last - 3, -10)))
            self._signup_then_hello(dev, first)
        self._steady(dev, first, last, median, 0.75)
        return first

    def _force(self, dev: _Dev, off: int, n: int = 1) -> None:
        plan = self._day(dev, off)
        plan[0] = max(plan[0], n)

    def _last_call_at(self, dev: _Dev, off: int, ms_in_day: int, route: int = ME) -> None:
        """Make the developer's last call exactly at this instant: drop later traffic."""
        for later in [o for o in dev.days if o > off]:
            if later <= 0:
                del dev.days[later]
        plan = self._day(dev, off)
        plan[2] = min(plan[2], ms_in_day)
        plan[1] = min(plan[1], plan[2])
        plan[3] = [s for s in plan[3] if s[0] < ms_in_day]
        if ms_in_day == 0:
            plan[0] = 0
        plan[3].append((ms_in_day, route, "GET", 200))

    def _plan(self, dev: _Dev) -> None:
        """Sign-up time and day-by-day traffic plan of one developer, by archetype."""
        rng = self.rng
        a = dev.archetype
        w0 = self.first_off
        if a == "never_integrates":
            self._signup_before(dev, w0 - 30, -8)
        elif a == "signup_no_calls":
            self._signup_before(dev, -6, -3)
        elif a == "new_signup_idle":
            self._signup_before(dev, -2, 0)
        elif a == "new_signup_active":
            off = rng.randint(-2, -1)
            self._signup_then_hello(dev, off)
            self._steady(dev, off + 1, 0, 12, 0.8)
        elif a == "hello_world_only":
            self._signup_then_hello(dev, rng.randint(w0, -1))
        elif a == "never_succeeds":
            off = rng.randint(w0, -2)
            dev.signup_ms = self.a0 + off * DAY_MS + rng.randint(0, 20 * HOUR_MS)
            t0 = dev.signup_ms - self.a0 - off * DAY_MS + 5 * 60_000
            for day in sorted(rng.sample(range(off, 1), min(rng.randint(1, 3), 1 - off))):
                plan = self._day(dev, day)
                t = t0 if day == off else rng.randint(6 * HOUR_MS, 20 * HOUR_MS)
                for _ in range(rng.randint(2, 12)):
                    status = rng.choice((401, 401, 403, 400, 404))
                    plan[3].append((t, rng.choice((ME, OAUTH)), "GET", status))
                    t += rng.randint(5_000, 120_000)
        elif a in ("sandbox", "adopter", "incident_caught"):
            self._active_user(dev, 0, rng.choice((8, 15, 30, 60)))
            recent = -rng.randint(0, 3)
            self._force(dev, recent)
            if a == "adopter":  # has tried every promoted route, whatever the random mix drew
                for route in PROMOTED:
                    i = ROUTE_INDEX[route]
                    ms = rng.randint(8 * HOUR_MS, 20 * HOUR_MS)
                    method = ROUTES[i].methods[0]
                    self._day(dev, recent)[3].append((ms, i, method, SUCCESS[method]))
            if a == "incident_caught":
                for inc in self.incidents[1:]:
                    self._incident_calls(dev, inc, rng.randint(1, 4))
            if a == "sandbox" and rng.random() < 0.12:
                self._force(dev, 1, rng.randint(1, 6))  # today's traffic, after as-of
        elif a == "production":
            dev.plan = rng.choice(("growth", "growth", "enterprise"))
            dev.quota = PLAN_QUOTAS[dev.plan]
            dev.busy_statuses = True
            self._signup_before(dev, w0 - 30, w0 - 1)
            ramp = rng.randint(max(w0 + 3, -24), max(w0 + 3, -16))
            target = rng.randint(1100, 1700)
            dev.prod_from = ramp
            dev.prod_ts = self.a0 + ramp * DAY_MS
            for off in range(w0, 1):
                if off < ramp:
                    if rng.random() < 0.85:
                        self._day(dev, off)[0] += rng.randint(15, 90)
                    continue
                step = min(1.0, (off - ramp + 1) / 6)
                n = int((150 + (target - 150) * step) * rng.uniform(0.9, 1.15))
                if off > -STAGE_WINDOW_DAYS:
                    n = max(n, 1050)
                self._day(dev, off)[0] += n
        elif a == "dormant":
            self._signup_before(dev, w0 - 20, w0)
            last = rng.randint(min(w0 + 2, -14), -14) if w0 < -14 else w0
            self._steady(dev, w0, last, 25, 0.7)
            self._force(dev, last)
        elif a == "stopped_traffic":
            last = rng.randint(-13, -7)
            self._active_user(dev, last, 30)
            self._force(dev, last)
        elif a in ("quota_warning", "quota_exceeded") or a.startswith("edge_quota"):
            self._active_user(dev, 0, rng.choice((40, 70, 110)))
            self._force(dev, 0, 30)
            self._force(dev, -1, 30)
            dev.plan = "startup" if a != "edge_quota_replaced_row" else "growth"
            dev.quota_rule = {
                "quota_warning": "warning", "quota_exceeded": "exceeded",
                "edge_quota_100": "edge_100", "edge_quota_101": "edge_101",
                "edge_quota_80": "edge_80", "edge_quota_replaced_row": "warning",
            }[a]  # fmt: skip
            if a == "edge_quota_100":
                self._force(dev, 1, 400)  # after as-of: would push it over 100% if counted
        elif a == "rate_limited":
            self._active_user(dev, 0, 60)
            dev.plan, dev.quota = "startup", PLAN_QUOTAS["startup"]
            self._burst(dev, 0, rng.randint(25, 180), rng.randint(10, 60))
        elif a.startswith("edge_rate_limited"):
            self._active_user(dev, 0, 40)
            dev.plan, dev.quota = "startup", PLAN_QUOTAS["startup"]
            self._burst(dev, 0, 20 if a.endswith("20") else 19, 15)
            if a.endswith("19"):
                self._burst(dev, -1, 30, 5)  # the day before does not count
                self._burst(dev, 1, 12, 0)  # nor does the day after as-of
        elif a == "edge_new_signup_in":
            dev.signup_ms = self.a0 - (WELCOME_WINDOW_DAYS - 1) * DAY_MS
        elif a == "edge_new_signup_out":
            dev.signup_ms = self.a0 - (WELCOME_WINDOW_DAYS - 1) * DAY_MS - 1
        elif a == "edge_no_calls_7d_in":
            dev.signup_ms = self.a0 - (SIGNUP_NO_CALLS_DAYS - 1) * DAY_MS
        elif a == "edge_no_calls_7d_out":
            dev.signup_ms = self.a0 - (SIGNUP_NO_CALLS_DAYS - 1) * DAY_MS - 1
        elif a == "edge_late_calls_only":
            dev.signup_ms = self.a0 - DAY_MS + 10 * HOUR_MS
            self._hello_world(dev, 1, 3 * HOUR_MS)  # after as-of: ignored
            self._force(dev, 1, 8)
        elif a.startswith("edge_stopped") or a.startswith("edge_recent_30"):
            off, ms = {
                "edge_stopped_in_7": (-7, DAY_MS - 1000),
                "edge_stopped_out_6": (-6, 0),
                "edge_stopped_in_13": (-13, 0),
                "edge_stopped_out_14": (-14, DAY_MS - 1),
                "edge_recent_30_in": (-(UNUSED_FEATURE_DAYS - 1), 0),
                "edge_recent_30_out": (-UNUSED_FEATURE_DAYS, DAY_MS - 1),
            }[a]
            self._signup_before(dev, w0 - 20, w0 - 1)
            self._steady(dev, w0, off, 20, 0.8)
            self._last_call_at(dev, off, ms)
            if a == "edge_stopped_in_7":
                self._force(dev, 1, 5)  # after as-of: still stopped
        elif a in ("edge_production_7001", "edge_sandbox_7000"):
            self._signup_before(dev, w0 - 30, w0 - 1)
            dev.plan, dev.quota = "growth", PLAN_QUOTAS["growth"]
            dev.busy_statuses = False  # no random 429s: the counts are the point here
            for off in range(w0, -STAGE_WINDOW_DAYS + 1):
                self._day(dev, off)[0] = rng.randint(40, 200)
            for off in range(-STAGE_WINDOW_DAYS + 1, 1):
                self._day(dev, off)[0] = 1000
            if a == "edge_production_7001":
                self._day(dev, 0)[0] = 1001
        elif a in ("edge_incident_in", "edge_incident_out"):
            self._signup_before(dev, w0 - 20, w0 - 1)
            self._steady(dev, w0, 0, 20, 0.8)
            inc = self.incidents[1]
            off = (inc.started_ms - self.a0) // DAY_MS
            day0 = self.a0 + off * DAY_MS
            route = ROUTE_INDEX["/v1/messages"]
            if a == "edge_incident_in":
                marks = (inc.started_ms - day0, inc.ended_ms - day0)
            else:
                marks = (inc.started_ms - day0 - 1000, inc.ended_ms - day0 + 1000)
            for ms in marks:
                self._day(dev, off)[3].append((ms, route, "POST", 503))
        else:  # pragma: no cover - every archetype is handled above
            raise AssertionError(a)
        if a == "edge_quota_replaced_row":
            dev.earlier_row = {"plan": "free", "monthly_quota": "", "role": "", "email": ""}
        if a == "edge_quota_80":  # make the month-to-date count a multiple of 4: exactly 80%
            first = (self.as_of.replace(day=1) - self.as_of).days
            m = sum(p[0] + len(p[3]) for o, p in dev.days.items() if first <= o <= 0)
            dev.days[0][0] += -m % 4

    def _burst(self, dev: _Dev, off: int, n429: int, n_ok: int) -> None:
        """A client hammering one route: its 429s and the calls that got through, minutes apart."""
        rng = self.rng
        plan = self._day(dev, off)
        route = rng.choice((ROUTE_INDEX["/v1/messages"], ROUTE_INDEX["/v1/search"]))
        method = "POST" if route == ROUTE_INDEX["/v1/messages"] else "GET"
        t = rng.randint(8 * HOUR_MS, 20 * HOUR_MS)
        statuses = [429] * n429 + [SUCCESS[method]] * n_ok
        rng.shuffle(statuses)
        for status in statuses:
            plan[3].append((t, route, method, status))
            t += rng.randint(50, 4000)

    def _incident_calls(self, dev: _Dev, inc: Incident, n: int) -> None:
        rng = self.rng
        off = (inc.started_ms - self.a0) // DAY_MS
        day0 = self.a0 + off * DAY_MS
        routes = [i for i, r in enumerate(ROUTES) if inc.matches(r.template)]
        for _ in range(n):
            ms = rng.randint(inc.started_ms, inc.ended_ms) - day0
            route = rng.choice(routes)
            method = ROUTES[route].methods[0]
            status = rng.choice((503, 503, 502, SUCCESS[method]))
            self._day(dev, off)[3].append((ms, route, method, status))

    # ---- events --------------------------------------------------------------------------

    def _day_events(self, dev: _Dev, off: int, plan: list) -> list[tuple]:
        """Events of one developer on one day, as tuples
        (ts, dev, route, method, path, status, sink, latency, req_bytes, resp_bytes, event_id).

        Hot path: a few `random()` calls per event and lookup tables instead of distributions.
        """
        rng = self.rng
        rand = rng.random
        getrandbits = rng.getrandbits
        n, lo, hi, specials = plan
        day0 = self.a0 + off * DAY_MS
        if dev.signup_ms >= day0:  # never a call before the sign-up
            lo = max(lo, dev.signup_ms - day0 + 1000)
        incidents = [
            inc for inc in self.incidents if inc.started_ms < day0 + DAY_MS and inc.ended_ms >= day0
        ]
        lat_table, size_table = self.lat_table, self.size_table
        n_lat, n_size = len(lat_table), len(size_table)
        out: list[tuple] = []
        append = out.append
        if n:
            hours = rng.choices(range(24), cum_weights=dev.hour_cum, k=n)
            routes = rng.choices(dev.route_idx, cum_weights=dev.route_cum, k=n)
            table = _BUSY_STATUSES if dev.busy_statuses else _BASE_STATUSES
            paths = dev.paths
            for h, r in zip(hours, routes, strict=True):
                ms = h * HOUR_MS + int(rand() * HOUR_MS)
                if ms < lo or ms >= hi:
                    ms = lo + int(rand() * max(1, hi - lo))
                route = ROUTES[r]
                method = route.methods[int(rand() * len(route.methods))]
                pool = paths[r]
                path = pool[int(rand() * len(pool))]
                if route.queries and method == "GET" and rand() < 0.25:
                    path += "?" + route.queries[int(rand() * len(route.queries))]
                x = rand() * 1000
                status = 0
                for code, w in table:
                    x -= w
                    if x < 0:
                        status = code
                        break
                if not status:
                    status = SUCCESS[method]
                ts = day0 + ms
                for inc in incidents:  # an incident shows in the statuses of its route
                    if inc.started_ms <= ts <= inc.ended_ms and inc.matches(route.template):
                        if status < 500 and rand() < 0.5:
                            status = 503
                x = rand()
                if x < 0.80:
                    sink = "jsonl"
                elif x < 0.88:
                    sink = "csv"
                elif x < 0.94:
                    sink = "moesif"
                else:
                    sink = "access"
                    ts -= ts % 1000  # the access log has whole seconds
                latency = lat_table[int(rand() * n_lat)]
                if method == "GET" or method == "DELETE":
                    req_bytes = 0
                else:
                    req_bytes = 80 + int(rand() * 3920)
                    latency += latency
                if status >= 500:
                    latency += 500 + int(rand() * 4500)
                if status == 204:
                    resp_bytes = 0
                elif status >= 400:
                    resp_bytes = 90 + int(rand() * 230)
                else:
                    resp_bytes = size_table[int(rand() * n_size)]
                append((ts, dev, r, method, path, status, sink, latency, req_bytes, resp_bytes,
                        f"evt_{getrandbits(80):020x}"))  # fmt: skip
        for ms, r, method, status in specials:
            pool = dev.paths[r]
            path = pool[int(rand() * len(pool))]
            latency = lat_table[int(rand() * n_lat)] + (800 if status >= 500 else 0)
            resp_bytes = 0 if status == 204 else 90 + int(rand() * 230)
            req_bytes = 0 if method in ("GET", "DELETE") else 80 + int(rand() * 920)
            append((day0 + ms, dev, r, method, path, status, "exact", latency, req_bytes,
                    resp_bytes, f"evt_{getrandbits(80):020x}"))  # fmt: skip
        return out

    # ---- writers -------------------------------------------------------------------------

    @staticmethod
    def _context(e: tuple) -> tuple[str, str, str]:
        """Environment, API key and client IP of an event (derived, so no random draws)."""
        dev = e[1]
        ip = dev.ips[len(e[4]) % len(dev.ips)]
        return (
            ("production", dev.keys[1], ip) if e[0] >= dev.prod_ts else ("sandbox", dev.keys[0], ip)
        )

    def _jsonl(self, e: tuple, zone: str = "Z") -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        extra = f',"region":"{dev.region}"' if dev.region else ""
        return (
            f'{{"event_id":"{eid}","occurred_at":"{iso_ms(ts, zone)}",'
            f'"developer_id":"{dev.developer_id}","company_id":"{dev.company_id}",'
            f'"method":"{method}","path":"{path}","status_code":{status},"latency_ms":{lat},'
            f'"request_bytes":{rq},"response_bytes":{rs},"environment":"{env}",'
            f'"api_key_id":"{key}","user_agent":"{dev.ua}","ip":"{ip}"{extra}}}\n'
        )

    def _csv(self, e: tuple, with_id: bool) -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        fields = (eid if with_id else "", iso_ms(ts, ""), dev.developer_id, dev.company_id, method,
                  path, str(status), str(lat), str(rq), str(rs), env, key, dev.ua, ip,
                  dev.region or "")  # fmt: skip
        return ",".join(_csv_field(f) for f in fields) + "\n"

    def _moesif(self, e: tuple) -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        rng = self.rng
        obj = {
            "request": {
                "time": iso_ms(ts),
                "uri": API_HOST + path,
                "verb": method,
                "headers": {
                    "Host": API_HOST.removeprefix("https://"),
                    "User-Agent": dev.ua,
                    "Accept": "application/json",
                    **(
                        {"Content-Type": "application/json", "Content-Length": str(rq)}
                        if rq
                        else {}
                    ),
                },
                "ip_address": ip,
                "api_version": "2024-06-01",
            },
            "response": {
                "time": iso_ms(ts + lat),
                "status": status,
                "headers": {"Content-Type": "application/json", "Content-Length": str(rs)},
            },
            "user_id": dev.developer_id,
            "company_id": dev.company_id,
            "session_token": f"{key}.{rng.getrandbits(32):08x}",
            "transaction_id": eid,
            "direction": "Incoming",
            "metadata": {"environment": env, "api_key_id": key},
        }
        return _COMPACT_JSON.encode(obj)

    def _access(self, e: tuple) -> str:
        ts, dev, _, method, path, status, _, lat, rq, rs, eid = e
        env, key, ip = self._context(e)
        dt = datetime.fromtimestamp(ts // 1000, UTC)
        stamp = f"{dt.day:02d}/{_MONTHS[dt.month - 1]}/{dt:%Y:%H:%M:%S} +0000"
        user = dev.developer_id
        if int(eid[-4:], 16) % 20 == 0:  # no remote user: the caller is the api_key parameter
            user = "-"
            path += ("&" if "?" in path else "?") + f"api_key={dev.developer_id}"
        size = str(rs) if rs else "-"
        return (
            f'{ip} - {user} [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "-" "{dev.ua}"\n'
        )

    def run(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        self._make_devs()
        self._write_events()
        self._set_quotas()
        self._write_reference()
        self._write_truth()
        return self._write_manifest()

    def _write_events(self) -> None:
        """Generate, sort and write one day at a time; late and duplicate records are held back
        in `deferred` (a few per day) and written with a later day."""
        with contextlib.ExitStack() as stack:

            def text(name: str) -> io.TextIOWrapper:
                return stack.enter_context(open(self.out / name, "w", encoding="utf-8", newline=""))

            gz_raw = stack.enter_context(open(self.out / "api_events.jsonl.gz", "wb"))
            gz = stack.enter_context(
                gzip.GzipFile(filename="api_events.jsonl", mode="wb", fileobj=gz_raw, mtime=0,
                              compresslevel=3)
            )  # fmt: skip
            jsonl = stack.enter_context(io.TextIOWrapper(gz, encoding="utf-8", newline="\n"))
            csv_f, moesif_f, access_f = (
                text("api_events.csv"), text("moesif_events.json"), text("access.log")
            )  # fmt: skip
            self._stream_events(jsonl, csv_f, moesif_f, access_f)

    def _stream_events(
        self,
        jsonl: io.TextIOWrapper,
        csv_f: io.TextIOWrapper,
        moesif_f: io.TextIOWrapper,
        access_f: io.TextIOWrapper,
    ) -> None:
        rng = self.rng
        csv_f.write(
            "event_id,occurred_at,developer_id,company_id,method,path,status_code,latency_ms,"
            "request_bytes,response_bytes,environment,api_key_id,user_agent,ip,region\n"
        )
        moesif_f.write("[\n")
        moesif_first = True
        deferred: dict[int, list[tuple[str, str]]] = {}
        for off in range(self.first_off, 2):
            batch: list[tuple] = []
            for dev in self.devs:
                plan = dev.days.get(off)
                if plan is not None:
                    batch.extend(self._day_events(dev, off, plan))
            batch.sort(key=itemgetter(0))
            lines: dict[str, list[str]] = {"jsonl": [], "csv": [], "moesif": [], "access": []}
            access_seen: set[str] = set()
            add = self.evaluator.add
            rand = rng.random
            for e in batch:
                ts, dev, r, _m, _p, status, sink, *_ = e
                if off <= 0:
                    add(dev.developer_id, ts, TEMPLATES[r], status)
                else:
                    self.after_as_of += 1
                x = rand()
                line = ""
                if sink == "access":
                    line = self._access(e)
                    if line in access_seen:  # identical line = same derived event_id
                        sink, line = "jsonl", ""
                    access_seen.add(line)
                if sink == "jsonl" or sink == "exact":
                    sink = "jsonl"
                    zone = _offset_str(dev.tz_offset) if 0.004 <= x < 0.034 else "Z"
                    line = self._jsonl(e, zone)
                elif sink == "csv":
                    line = self._csv(e, with_id=int(e[10][-2:], 16) < 205)
                elif sink == "moesif":
                    line = self._moesif(e)
                if x < 0.004 and off < 1:  # arrives one to three days late
                    self.late_out_of_order += 1
                    deferred.setdefault(off + rng.randint(1, 3), []).append((sink, line))
                else:
                    lines[sink].append(line)
                if x > 0.997:  # delivered twice: identical record, maybe a day later
                    self.duplicates += 1
                    deferred.setdefault(off + rng.randint(0, 1), []).append((sink, line))
                elif x > 0.9968 and sink == "jsonl":
                    self.duplicates += 1  # the same event_id again, in the CSV file
                    lines["csv"].append(self._csv(e, with_id=True))
            self.distinct_events += len(batch)
            for sink, line in deferred.pop(off, []):
                lines[sink].append(line)
            if off == 1:  # whatever is still late arrives with the last file chunk
                for key in sorted(deferred):
                    for sink, line in deferred.pop(key):
                        lines[sink].append(line)
            jsonl.write("".join(lines["jsonl"]))
            csv_f.write("".join(lines["csv"]))
            access_f.write("".join(lines["access"]))
            for obj in lines["moesif"]:
                moesif_f.write(obj if moesif_first else ",\n" + obj)
                moesif_first = False
            self.rows["api_events.jsonl.gz"] += len(lines["jsonl"])
            self.rows["api_events.csv"] += len(lines["csv"])
            self.rows["moesif_events.json"] += len(lines["moesif"])
            self.rows["access.log"] += len(lines["access"])
        moesif_f.write("\n]\n")

    def _set_quotas(self) -> None:
        """Quota archetypes get the quota that puts their month-to-date count where they belong
        (the count depends on the as-of day of the month, so it is set after the traffic)."""
        rng = self.rng
        for dev in self.devs:
            rule = dev.quota_rule
            if rule is None:
                continue
            m = self.evaluator.mtd_count(dev.developer_id)
            if rule == "edge_100":
                dev.quota = m
            elif rule == "edge_101":
                dev.quota = max(1, m - 1)
            elif rule == "edge_80":
                dev.quota = -(-m * 5 // 4)  # exactly 80%: _plan made m a multiple of 4
            elif rule == "warning":
                dev.quota = _nice_quota(m / rng.uniform(0.83, 0.97), m, m * 5 // 4)
            else:
                dev.quota = _nice_quota(m / rng.uniform(1.15, 1.6), 1, m - 1)

    def _write_reference(self) -> None:
        rows = []
        for dev in self.devs:
            if dev.earlier_row is not None:
                rows.append(self._dev_row(dev, dev.earlier_row))
        for dev in self.devs:
            rows.append(self._dev_row(dev, {}))
        with open(self.out / "developers.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(DEVELOPER_COLUMNS)
            w.writerows(rows)
        self.developer_rows = len(rows)
        with open(self.out / "endpoints.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["route", "feature_name", "promoted", "docs_url"])
            for r in ROUTES:
                if r.feature is not None:
                    slug = re.sub(r"[^a-z0-9]+", "-", r.feature.lower()).strip("-")
                    w.writerow([r.template, r.feature, "true" if r.promoted else "false",
                                f"{DOCS}/{slug}"])  # fmt: skip
        with open(self.out / "incidents.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for inc in self.incidents:
                f.write(
                    json.dumps({
                        "incident_id": inc.incident_id, "title": inc.title,
                        "started_at": iso_ms(inc.started_ms), "ended_at": iso_ms(inc.ended_ms),
                        "affected_route": inc.affected_route,
                    }) + "\n"
                )  # fmt: skip

    def _dev_row(self, dev: _Dev, override: dict[str, str]) -> list[str]:
        quota = "" if dev.quota is None else str(dev.quota)
        return [
            dev.developer_id, override.get("email", dev.email), dev.name, dev.company_id,
            dev.company_name, override.get("role", dev.role), iso_ms(dev.signup_ms),
            override.get("plan", dev.plan), override.get("monthly_quota", quota), dev.tz,
            "true" if dev.opt_in else "false",
        ]  # fmt: skip

    def _write_truth(self) -> None:
        members = self.evaluator.members((d.developer_id, d.signup_ms, d.quota) for d in self.devs)
        per_dev: dict[str, list[str]] = {}
        for segment, dev_id, _ in members:
            names = per_dev.setdefault(dev_id, [])
            if segment not in names:
                names.append(segment)
        with open(self.out / "archetypes.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["developer_id", "archetype", "expected_segments"])
            for dev in self.devs:
                w.writerow(
                    [dev.developer_id, dev.archetype, " ".join(per_dev.get(dev.developer_id, []))]
                )
        with open(self.out / "expected_members.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["segment", "developer_id", "detail"])
            w.writerows(members)
        self.members = members

    def _write_manifest(self) -> Path:
        files = [
            ("developers.csv", "developers", "csv", self.developer_rows),
            ("endpoints.csv", "endpoints", "csv", sum(1 for r in ROUTES if r.feature)),
            ("incidents.jsonl", "incidents", "jsonl", len(self.incidents)),
            ("api_events.jsonl.gz", "api_events", "jsonl", self.rows["api_events.jsonl.gz"]),
            ("api_events.csv", "api_events", "csv", self.rows["api_events.csv"]),
            ("moesif_events.json", "api_events", "moesif", self.rows["moesif_events.json"]),
            ("access.log", "api_events", "combined", self.rows["access.log"]),
        ]
        counts: dict[str, int] = {name: 0 for name in SEGMENTS}
        for segment, _, _ in self.members:
            counts[segment] += 1
        manifest = {
            "as_of": self.as_of.isoformat(),
            "seed": self.seed,
            "developers": self.n,
            "days": self.days,
            "files": [
                {"path": p, "kind": k, "format": fmt, "caller": None, "rows": rows}
                for p, k, fmt, rows in files
            ],
            "truth": ["archetypes.csv", "expected_members.csv"],
            "events": {
                "distinct": self.distinct_events,
                "after_as_of": self.after_as_of,
                "duplicates": self.duplicates,
                "out_of_order": self.late_out_of_order,
                "first_day": (self.as_of - timedelta(days=self.days - 1)).isoformat(),
            },
            "expected_members": counts,
        }
        path = self.out / "manifest.json"
        path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return path


def _nice_quota(target: float, lo: int, hi: int) -> int:
    """A round quota near target within [lo, hi], as a sales team would set it."""
    for step in (1000, 100, 10, 1):
        q = int(round(target / step)) * step
        if lo <= q <= hi and q > 0:
            return q
    return max(1, min(hi, max(lo, int(target))))


def _ascii(text: str) -> str:
    """Name to email local part: accents dropped, letters without a decomposition spelled out."""
    text = text.translate(str.maketrans({"ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "Ae"}))
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def default_as_of() -> date:
    """Yesterday in UTC: the last complete day of data."""
    return datetime.now(UTC).date() - timedelta(days=1)


def generate(
    out_dir: str | Path,
    developers: int = 300,
    days: int = 45,
    seed: int = 7,
    as_of: date | None = None,
) -> Path:
    """Write the sample data set into out_dir and return the path of its manifest.json."""
    if developers < 1:
        raise OnrampError(f"--developers must be at least 1, got {developers}")
    if days < MIN_DAYS:
        raise OnrampError(
            f"--days must be at least {MIN_DAYS} (stopped_traffic looks back 13 days), got {days}"
        )
    as_of = as_of or default_as_of()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OnrampError(f"cannot create output directory {out}: {exc.strerror}") from exc
    log.info("generating %d developers over %d days to %s (seed %d)", developers, days, as_of, seed)
    try:
        generator = _Generator(out, developers, days, seed, as_of)
        manifest = generator.run()
    except OSError as exc:
        raise OnrampError(f"cannot write sample data to {out}: {exc.strerror or exc}") from exc
    log.info(
        "wrote %d distinct events (%d duplicated, %d after as-of) for %d developers to %s",
        generator.distinct_events, generator.duplicates, generator.after_as_of, developers, out,
    )  # fmt: skip
    return manifest


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


@click.command("generate")
@click.option(
    "--developers",
    default=300,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of developers.",
)
@click.option(
    "--days",
    default=45,
    show_default=True,
    type=click.IntRange(min=MIN_DAYS),
    help="Days of API traffic, ending with the as-of day.",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory [default: $ONRAMP_HOME/landing/sample].",
)
@click.option("--as-of", "as_of", callback=_parse_date, default=None, metavar="YYYY-MM-DD",
              help="Last complete day of data [default: yesterday, UTC].")  # fmt: skip
def generate_command(
    developers: int, days: int, seed: int, out_dir: Path | None, as_of: date | None
) -> None:
    """Write deterministic sample data: developers, endpoints, incidents and API events in
    every supported format, plus manifest.json and the expected segment members."""
    if out_dir is None:
        from onramp.settings import Settings

        out_dir = Settings.from_env().landing_dir / "sample"
    manifest_path = generate(out_dir, developers=developers, days=days, seed=seed, as_of=as_of)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    ev = manifest["events"]
    click.echo(
        f"Sample data in {manifest_path.parent} (as of {manifest['as_of']}, "
        f"{ev['first_day']}..{manifest['as_of']}, seed {seed})"
    )
    width = max(len(f["path"]) for f in manifest["files"])
    for f in manifest["files"]:
        click.echo(
            f"  {f['path']:<{width}}  {f['kind']:<10}  {f['format']:<8}  {f['rows']:>9,} rows"
        )
    click.echo(
        f"  {ev['distinct']:,} distinct events ({ev['duplicates']:,} duplicated, "
        f"{ev['out_of_order']:,} out of order, {ev['after_as_of']:,} after as-of)"
    )
    counts = ", ".join(f"{k} {v}" for k, v in manifest["expected_members"].items())
    click.echo(f"  expected segment members: {counts}")
