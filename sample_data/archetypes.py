"""Developer archetypes and the traffic plan of each (who signs up when, calls what, stops when).

`TrafficPlans` is mixed into the generator: its methods fill `Developer.days` using the
generator's seeded `rng`, as-of instant `a0` and first day offset `first_off`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from sample_data.catalog import ME, OAUTH, PLAN_QUOTAS, PROMOTED, ROUTE_INDEX, ROUTES, SUCCESS
from sample_data.reference import (
    MIN_DAYS,
    SIGNUP_NO_CALLS_DAYS,
    STAGE_WINDOW_DAYS,
    UNUSED_FEATURE_DAYS,
    WELCOME_WINDOW_DAYS,
    Incident,
)
from sample_data.timestamps import DAY_MS, HOUR_MS


@dataclass
class Developer:
    """One generated developer: identity, plan and the traffic plan of their archetype."""

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


def allocate(n: int, days: int) -> list[str]:
    """Archetype per developer slot: one of each core archetype, the boundary cases, the rest
    by share. Deterministic; shuffled later with the seeded generator."""
    edges = [e for e in EDGE_CASES if edge_fits(e, days)]
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


def edge_fits(edge: str, days: int) -> bool:
    """Whether a boundary-case archetype fits in a history of `days` days."""
    need = {"edge_stopped_out_14": 16, "edge_recent_30_in": 31, "edge_recent_30_out": 32}
    return days >= need.get(edge, MIN_DAYS)


class TrafficPlans:
    """How each archetype uses the API, day by day (a mixin of the generator)."""

    def _day(self, dev: Developer, off: int) -> list:
        plan = dev.days.get(off)
        if plan is None:
            plan = dev.days[off] = [0, 0, DAY_MS, []]
        return plan

    def _steady(self, dev: Developer, start: int, end: int, median: float, p_active: float) -> None:
        """Human-paced use: most weekdays, fewer weekend days, a lognormal count per day."""
        rng = self.rng
        for off in range(start, end + 1):
            weekday = (self.as_of + timedelta(days=off)).weekday()
            if rng.random() < p_active * (0.45 if weekday >= 5 else 1.0):
                self._day(dev, off)[0] += max(1, int(rng.lognormvariate(math.log(median), 0.7)))

    def _hello_world(self, dev: Developer, off: int, after_ms: int) -> int:
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

    def _signup_then_hello(self, dev: Developer, signup_off: int) -> int:
        """Sign up on a day, first success minutes to a day later; returns the first day."""
        rng = self.rng
        signup_in_day = rng.randint(0, DAY_MS - 2 * HOUR_MS)
        dev.signup_ms = self.a0 + signup_off * DAY_MS + signup_in_day
        start = signup_in_day + rng.randint(2 * 60_000, 90 * 60_000)
        self._hello_world(dev, signup_off, start)
        return signup_off

    def _signup_before(self, dev: Developer, lo: int, hi: int) -> None:
        off = self.rng.randint(lo, hi)
        dev.signup_ms = self.a0 + off * DAY_MS + self.rng.randint(0, DAY_MS - 1)

    def _active_user(self, dev: Developer, last: int = 0, median: float = 35.0) -> int:
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

    def _force(self, dev: Developer, off: int, n: int = 1) -> None:
        plan = self._day(dev, off)
        plan[0] = max(plan[0], n)

    def _last_call_at(self, dev: Developer, off: int, ms_in_day: int, route: int = ME) -> None:
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

    def _plan(self, dev: Developer) -> None:
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

    def _burst(self, dev: Developer, off: int, n429: int, n_ok: int) -> None:
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

    def _incident_calls(self, dev: Developer, inc: Incident, n: int) -> None:
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
