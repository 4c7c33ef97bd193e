"""The sample-data generator: one seeded random stream drives developers and their traffic."""

from __future__ import annotations

import bisect
import logging
import math
import random
import unicodedata
from datetime import date
from pathlib import Path

from onramp.as_of import yesterday_utc
from onramp.errors import OnrampError
from onramp.roles import ROLES
from sample_data.archetypes import Developer, TrafficPlans, allocate
from sample_data.catalog import (
    BASE_STATUSES,
    BUSY_STATUSES,
    COMPANY_KINDS,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    FEATURE_GROUPS,
    FIRST_NAMES,
    LAST_NAMES,
    PLAN_QUOTAS,
    PROMOTED,
    ROLE_WEIGHTS,
    ROUTE_INDEX,
    ROUTES,
    SDK_WEIGHTS,
    SDKS,
    SUCCESS,
    TIMEZONES,
    Route,
    cumulative,
)
from sample_data.reference import MIN_DAYS, Incident, SegmentEvaluator
from sample_data.timestamps import DAY_MS, HOUR_MS, epoch_ms
from sample_data.writers import FileWriters

log = logging.getLogger(__name__)


class Generator(TrafficPlans, FileWriters):
    """Builds developers from archetypes, then their traffic, then writes every file."""

    def __init__(self, out_dir: Path, developers: int, days: int, seed: int, as_of: date):
        self.out = out_dir
        self.n = developers
        self.days = days
        self.seed = seed
        self.as_of = as_of
        self.rng = random.Random(seed)
        self.a0 = epoch_ms(as_of)
        self.first_off = -(days - 1)
        self.incidents = self._incidents()
        self.evaluator = SegmentEvaluator(as_of, PROMOTED, self.incidents)
        self.devs: list[Developer] = []
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
        slots = allocate(self.n, self.days)
        rng.shuffle(slots)
        companies: list[tuple[str, str, str]] = []
        tz_cum = cumulative(w for _, _, w in TIMEZONES)
        role_cum = cumulative(ROLE_WEIGHTS)
        sdk_cum = cumulative(SDK_WEIGHTS)
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
            dev = Developer(
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

    def _routes(self, dev: Developer) -> None:
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
        dev.route_cum = cumulative(ROUTES[i].weight * rng.uniform(0.3, 2.0) for i in seen)
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

    def _hours(self, dev: Developer) -> None:
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
        dev.hour_cum = cumulative(weights)

    # ---- events --------------------------------------------------------------------------

    def _day_events(self, dev: Developer, off: int, plan: list) -> list[tuple]:
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
            table = BUSY_STATUSES if dev.busy_statuses else BASE_STATUSES
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

    def run(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        self._make_devs()
        self._write_events()
        self._set_quotas()
        self._write_reference()
        self._write_truth()
        return self._write_manifest()

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
    """Yesterday in UTC: the last complete day of data (onramp.as_of)."""
    return yesterday_utc()


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
        generator = Generator(out, developers, days, seed, as_of)
        manifest = generator.run()
    except OSError as exc:
        raise OnrampError(f"cannot write sample data to {out}: {exc.strerror or exc}") from exc
    log.info(
        "wrote %d distinct events (%d duplicated, %d after as-of) for %d developers to %s",
        generator.distinct_events, generator.duplicates, generator.after_as_of, developers, out,
    )  # fmt: skip
    return manifest
