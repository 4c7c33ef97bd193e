"""The sample data generator: deterministic files, every format, and segment truth that follows
docs/segments.md (re-derived here from the files themselves, with an independent, naive
implementation of the rules, so a generator bug cannot confirm itself)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from onramp.errors import OnrampError
from onramp.roles import ROLES as KNOWN_ROLES
from sample_data import (
    LATE_DAY_ARCHETYPES,
    ROUTES,
    SEGMENTS,
    generate,
    generate_command,
    normalize_route,
)

AS_OF = date(2026, 11, 26)
ROLES = set(KNOWN_ROLES)
ACCESS = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) '
    r'HTTP/[\d.]+" (?P<status>\d{3}) (?P<size>\d+|-) "[^"]*" "[^"]*"$'
)


@pytest.fixture(scope="module")
def default_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default-size data set (what `make demo` loads), generated once for the module."""
    out = tmp_path_factory.mktemp("default")
    generate(out, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    generate(out, developers=60, days=35, seed=11, as_of=date(2026, 3, 1))
    return out


@pytest.fixture(scope="module")
def small_events(small_set: Path) -> list[dict]:
    return read_events(small_set)


def read_events(out: Path) -> list[dict]:
    """Every API event line of the four files, as dicts (duplicates included)."""
    events: list[dict] = []
    with gzip.open(out / "api_events.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            events.append(
                {
                    "key": row["event_id"],
                    "developer_id": row["developer_id"],
                    "at": datetime.fromisoformat(row["occurred_at"]),
                    "path": row["path"],
                    "status": row["status_code"],
                    "file": "jsonl",
                }
            )
    with open(out / "api_events.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            at = datetime.fromisoformat(row["occurred_at"])
            assert at.tzinfo is None  # the CSV slice exercises "no zone = UTC"
            key = row["event_id"] or hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()
            events.append(
                {
                    "key": key,
                    "developer_id": row["developer_id"],
                    "at": at.replace(tzinfo=UTC),
                    "path": row["path"],
                    "status": int(row["status_code"]),
                    "file": "csv",
                }
            )
    for obj in json.loads((out / "moesif_events.json").read_text(encoding="utf-8")):
        uri = obj["request"]["uri"]
        events.append(
            {
                "key": obj["transaction_id"],
                "developer_id": obj["user_id"],
                "at": datetime.fromisoformat(obj["request"]["time"]),
                "path": "/" + uri.split("://", 1)[1].split("/", 1)[1],
                "status": obj["response"]["status"],
                "file": "moesif",
            }
        )
    seen_lines: Counter[str] = Counter()
    with open(out / "access.log", encoding="utf-8") as f:
        for line in f:
            seen_lines[line] += 1  # identical log lines are distinct calls (docs/raw-formats.md)
            m = ACCESS.match(line.rstrip("\n"))
            assert m, line
            user = m["user"]
            if user == "-":
                user = re.search(r"[?&]api_key=([^&]+)", m["path"])[1]
            events.append(
                {
                    "key": hashlib.sha256(f"{line}{seen_lines[line]}".encode()).hexdigest(),
                    "developer_id": user,
                    "at": datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z"),
                    "path": m["path"],
                    "status": int(m["status"]),
                    "file": "access",
                }
            )
    return events


def expected_from_files(out: Path, events: list[dict]) -> set[tuple[str, str, str]]:
    """The rules of docs/segments.md, written out plainly over the files (not the generator)."""
    manifest = json.loads((out / "manifest.json").read_text())
    as_of = date.fromisoformat(manifest["as_of"])
    devs: dict[str, dict] = {}
    with open(out / "developers.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            devs[row["developer_id"]] = row  # a later row replaces an earlier one
    with open(out / "endpoints.csv", encoding="utf-8", newline="") as f:
        promoted = [r["route"] for r in csv.DictReader(f) if r["promoted"] == "true"]
    incidents = [json.loads(line) for line in open(out / "incidents.jsonl", encoding="utf-8")]
    unique: dict[str, dict] = {}
    for e in events:
        unique.setdefault(e["key"], e)
    by_dev: dict[str, list[dict]] = defaultdict(list)
    for e in unique.values():
        e["day"] = e["at"].astimezone(UTC).date()
        if e["day"] <= as_of:  # events after the as-of day are ignored
            by_dev[e["developer_id"]].append(e)

    def like(value: str, pattern: str) -> bool:
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
        return re.fullmatch(regex, value) is not None

    out_rows: set[tuple[str, str, str]] = set()
    for dev_id, dev in devs.items():
        evs = by_dev.get(dev_id, [])
        signup = datetime.fromisoformat(dev["signed_up_at"]).astimezone(UTC).date()
        if as_of - timedelta(days=2) <= signup <= as_of:
            out_rows.add(("new_signups", dev_id, ""))
        if as_of - timedelta(days=6) <= signup <= as_of and not evs:
            out_rows.add(("signup_no_calls_7d", dev_id, ""))
        window = [e for e in evs if e["day"] >= as_of - timedelta(days=6)]
        if not any(e["status"] < 400 for e in evs):
            out_rows.add(("stage_not_integrated", dev_id, ""))
        elif window and len(window) / 7 > 1000:
            out_rows.add(("stage_production", dev_id, ""))
        elif window:
            out_rows.add(("stage_sandbox", dev_id, ""))
        if evs:
            last = max(e["day"] for e in evs)
            routes = Counter(normalize_route(e["path"]) for e in evs)
            if as_of - timedelta(days=13) <= last <= as_of - timedelta(days=7):
                top = sorted(routes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
                out_rows.add(("stopped_traffic", dev_id, top))
            if last >= as_of - timedelta(days=29):
                for route in promoted:
                    if route not in routes:
                        out_rows.add(("unused_feature", dev_id, route))
        quota = int(dev["monthly_quota"]) if dev["monthly_quota"] else None
        if quota:
            mtd = sum(1 for e in evs if e["day"] >= as_of.replace(day=1))
            month = as_of.replace(day=1).isoformat()
            if mtd > quota:
                out_rows.add(("quota_exceeded", dev_id, month))
            elif mtd >= 0.8 * quota:
                out_rows.add(("quota_warning", dev_id, month))
        if sum(1 for e in evs if e["day"] == as_of and e["status"] == 429) >= 20:
            out_rows.add(("rate_limited", dev_id, as_of.isoformat()))
        for inc in incidents:
            start = datetime.fromisoformat(inc["started_at"])
            end = datetime.fromisoformat(inc["ended_at"])
            pattern = inc["affected_route"]
            if any(
                start <= e["at"] <= end
                and (
                    normalize_route(e["path"]) == pattern
                    or like(normalize_route(e["path"]), pattern)
                )
                for e in evs
            ):
                out_rows.add(("incident_affected", dev_id, inc["incident_id"]))
    return out_rows


def archetypes(out: Path) -> dict[str, tuple[str, set[str]]]:
    with open(out / "archetypes.csv", encoding="utf-8", newline="") as f:
        return {
            r["developer_id"]: (r["archetype"], set(r["expected_segments"].split()))
            for r in csv.DictReader(f)
        }


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    kwargs = {"developers": 40, "days": 20, "as_of": AS_OF}
    generate(tmp_path / "a", seed=3, **kwargs)
    generate(tmp_path / "b", seed=3, **kwargs)
    generate(tmp_path / "c", seed=4, **kwargs)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in ("developers.csv", "api_events.jsonl.gz", "access.log", "archetypes.csv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name


def test_every_segment_has_expected_members_at_default_size(default_set: Path) -> None:
    seen = Counter(seg for _, segs in archetypes(default_set).values() for seg in segs)
    assert set(seen) == set(SEGMENTS), set(SEGMENTS) - set(seen)
    manifest = json.loads((default_set / "manifest.json").read_text())
    assert manifest["developers"] == 300 and manifest["days"] == 45
    assert 300_000 <= manifest["events"]["distinct"] <= 800_000
    assert seen["stage_production"] <= 0.05 * 300  # production stays a small share


def test_manifest_lists_every_data_file_with_its_row_count(default_set: Path) -> None:
    manifest = json.loads((default_set / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-11-26" and manifest["seed"] == 7
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.name for p in default_set.iterdir()} - {"manifest.json", *manifest["truth"]}
    assert set(listed) == on_disk
    assert [f["kind"] for f in manifest["files"][:3]] == ["developers", "endpoints", "incidents"]
    assert {f["format"] for f in manifest["files"] if f["kind"] == "api_events"} == {
        "jsonl",
        "csv",
        "moesif",
        "combined",
    }
    with gzip.open(default_set / "api_events.jsonl.gz", "rt") as f:
        assert sum(1 for _ in f) == listed["api_events.jsonl.gz"]["rows"]
    with open(default_set / "api_events.csv") as f:
        assert sum(1 for _ in f) - 1 == listed["api_events.csv"]["rows"]
    moesif = json.loads((default_set / "moesif_events.json").read_text())
    assert len(moesif) == listed["moesif_events.json"]["rows"]
    with open(default_set / "access.log") as f:
        assert sum(1 for _ in f) == listed["access.log"]["rows"]
    for f_ in manifest["files"]:
        assert f_["rows"] > 0 and f_["caller"] is None


def test_developers_cover_roles_plans_consent_and_recent_signups(default_set: Path) -> None:
    with open(default_set / "developers.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    roles = Counter(r["role"] for r in rows)
    assert ROLES <= set(roles) and "" in roles
    assert roles["engineering"] == max(roles.values())
    assert {r["plan"] for r in rows} == {"free", "startup", "growth", "enterprise"}
    assert any(r["monthly_quota"] == "" for r in rows)
    opt_in = Counter(r["marketing_opt_in"] for r in rows)
    assert opt_in["true"] > opt_in["false"] > 0
    assert all("/" in r["timezone"] or r["timezone"] == "UTC" for r in rows)
    assert all(r["email"].endswith(".example") for r in rows if r["email"])
    signups = [datetime.fromisoformat(r["signed_up_at"]).date() for r in rows]
    assert sum(1 for d in signups if d >= AS_OF - timedelta(days=2)) >= 3
    assert sum(1 for d in signups if d >= AS_OF - timedelta(days=6)) >= 6
    assert len(rows) > len({r["developer_id"] for r in rows})  # a later row replaces one


def test_duplicates_late_arrivals_and_nothing_after_as_of_but_the_deliberate(
    small_set: Path, small_events: list[dict]
) -> None:
    events = small_events
    manifest = json.loads((small_set / "manifest.json").read_text())
    as_of = date.fromisoformat(manifest["as_of"])
    keys = Counter(e["key"] for e in events)
    assert sum(n - 1 for n in keys.values()) == manifest["events"]["duplicates"] > 0
    by_key = defaultdict(set)
    for e in events:
        by_key[e["key"]].add(e["file"])
    assert any(files == {"jsonl", "csv"} for files in by_key.values())  # across files too
    times = [e["at"] for e in events if e["file"] == "jsonl"]
    assert sum(1 for a, b in zip(times, times[1:], strict=False) if b < a - timedelta(hours=1)) > 0
    kinds = archetypes(small_set)
    unique = {e["key"]: e for e in events}.values()
    after = [e for e in unique if e["at"].astimezone(UTC).date() > as_of]
    assert len(after) == manifest["events"]["after_as_of"] > 0
    assert len(after) < 0.01 * len(unique)
    assert all(e["at"].astimezone(UTC).date() == as_of + timedelta(days=1) for e in after)
    assert {kinds[e["developer_id"]][0] for e in after} <= set(LATE_DAY_ARCHETYPES)
    first = date.fromisoformat(manifest["events"]["first_day"])
    assert min(e["at"] for e in unique).date() == first


def test_paths_carry_ids_and_normalise_to_catalog_routes(small_events: list[dict]) -> None:
    events = small_events
    catalog = {r.template for r in ROUTES}
    routes = Counter(normalize_route(e["path"]) for e in events)
    assert set(routes) <= catalog
    paths = [e["path"] for e in events]
    assert any(re.search(r"/\d+(/|$)", p) for p in paths)
    assert any(re.search(r"/[0-9a-f]{8}-[0-9a-f]{4}-", p) for p in paths)
    assert any(re.search(r"/[0-9a-f]{40}$", p) for p in paths)
    assert any("?" in p for p in paths)
    statuses = Counter(e["status"] // 100 for e in events)
    assert statuses[2] > 0.8 * len(events) and statuses[4] > 0 and statuses[5] > 0
    assert any(e["status"] == 429 for e in events)


def test_expected_segments_follow_design_rules_over_the_written_files(
    small_set: Path, small_events: list[dict]
) -> None:
    with open(small_set / "expected_members.csv", encoding="utf-8", newline="") as f:
        written = {(r["segment"], r["developer_id"], r["detail"]) for r in csv.DictReader(f)}
    assert written == expected_from_files(small_set, small_events)
    per_dev: dict[str, set[str]] = defaultdict(set)
    for segment, dev_id, _ in written:
        per_dev[dev_id].add(segment)
    for dev_id, (_, segs) in archetypes(small_set).items():
        assert segs == per_dev.get(dev_id, set()), dev_id


# The boundary cases must land on the side of each rule that their name says.
EDGES = {
    "edge_new_signup_in": ({"new_signups", "signup_no_calls_7d"}, set()),
    "edge_new_signup_out": ({"signup_no_calls_7d"}, {"new_signups"}),
    "edge_no_calls_7d_in": ({"signup_no_calls_7d"}, {"new_signups"}),
    "edge_no_calls_7d_out": ({"stage_not_integrated"}, {"signup_no_calls_7d"}),
    "edge_late_calls_only": ({"signup_no_calls_7d", "stage_not_integrated"}, set()),
    "edge_stopped_in_7": ({"stopped_traffic"}, {"stage_sandbox"}),
    "edge_stopped_out_6": ({"stage_sandbox"}, {"stopped_traffic"}),
    "edge_stopped_in_13": ({"stopped_traffic"}, set()),
    "edge_stopped_out_14": (set(), {"stopped_traffic", "stage_sandbox"}),
    "edge_production_7001": ({"stage_production"}, {"stage_sandbox"}),
    "edge_sandbox_7000": ({"stage_sandbox"}, {"stage_production"}),
    "edge_rate_limited_20": ({"rate_limited"}, set()),
    "edge_rate_limited_19": (set(), {"rate_limited"}),
    "edge_incident_in": ({"incident_affected"}, set()),
    "edge_incident_out": (set(), {"incident_affected"}),
    "edge_quota_100": ({"quota_warning"}, {"quota_exceeded"}),
    "edge_quota_101": ({"quota_exceeded"}, {"quota_warning"}),
    "edge_quota_80": ({"quota_warning"}, {"quota_exceeded"}),
    "edge_quota_replaced_row": ({"quota_warning"}, set()),
    "edge_recent_30_in": ({"unused_feature"}, set()),
    "edge_recent_30_out": (set(), {"unused_feature"}),
    "never_integrates": ({"stage_not_integrated"}, {"unused_feature"}),
    "production": ({"stage_production"}, set()),
    "stopped_traffic": ({"stopped_traffic"}, set()),
    "rate_limited": ({"rate_limited"}, set()),
    "quota_warning": ({"quota_warning"}, set()),
    "quota_exceeded": ({"quota_exceeded"}, set()),
    "adopter": (set(), {"unused_feature"}),
    "new_signup_idle": ({"new_signups", "signup_no_calls_7d"}, set()),
    "new_signup_active": ({"new_signups", "stage_sandbox"}, {"signup_no_calls_7d"}),
    "never_succeeds": ({"stage_not_integrated"}, set()),
}


@pytest.mark.parametrize("fixture", ["default_set", "small_set"])
def test_archetypes_and_boundary_cases_land_where_named(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    rows = archetypes(request.getfixturevalue(fixture))
    seen = set()
    for dev_id, (archetype, segs) in rows.items():
        if archetype in EDGES:
            must, must_not = EDGES[archetype]
            assert must <= segs and not (must_not & segs), (archetype, dev_id, segs)
            seen.add(archetype)
    if fixture == "default_set":
        assert seen == set(EDGES)


def test_small_set_as_of_first_of_month_still_fills_every_segment(small_set: Path) -> None:
    assert json.loads((small_set / "manifest.json").read_text())["as_of"] == "2026-03-01"
    seen = {seg for _, segs in archetypes(small_set).values() for seg in segs}
    assert seen == set(SEGMENTS)


def test_cli_prints_files_and_rows(tmp_path: Path) -> None:
    args = ["--developers", "30", "--days", "14", "--seed", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(generate_command, [*args, "--as-of", "2026-11-26"])
    assert result.exit_code == 0, result.output
    assert "as of 2026-11-26" in result.output
    for name in ("developers.csv", "api_events.jsonl.gz", "moesif_events.json", "access.log"):
        assert name in result.output
    assert (tmp_path / "manifest.json").exists()
    bad = CliRunner().invoke(generate_command, [*args, "--as-of", "26/11/2026"])
    assert bad.exit_code == 2 and "expected YYYY-MM-DD" in bad.output


def test_every_call_comes_from_a_known_developer_after_sign_up(
    small_set: Path, small_events: list[dict]
) -> None:
    with open(small_set / "developers.csv", encoding="utf-8", newline="") as f:
        signed_up = {
            r["developer_id"]: datetime.fromisoformat(r["signed_up_at"]) for r in csv.DictReader(f)
        }
    first: dict[str, datetime] = {}
    for e in small_events:
        first[e["developer_id"]] = min(e["at"], first.get(e["developer_id"], e["at"]))
    assert set(first) <= set(signed_up)
    assert all(at >= signed_up[dev_id] for dev_id, at in first.items())


def test_unwritable_output_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a directory")
    with pytest.raises(OnrampError, match=r"^cannot create output directory .*taken"):
        generate(tmp_path / "taken", developers=5, days=14, as_of=AS_OF)


def test_too_few_days_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OnrampError, match=r"^--days must be at least 14 .*got 7$"):
        generate(tmp_path, days=7, as_of=AS_OF)
