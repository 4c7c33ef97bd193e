"""The block fast paths give exactly the rows of the general path, or step aside.

A fast path that accepted a row the general path would change (or reject) would load wrong data
silently; these tests hold each accepted row to the general path's output.
"""

from __future__ import annotations

import json

import pytest

from ingest.event_rows import EVENT_COLUMNS, event_line, json_event
from ingest.fast_paths import CsvFast, JsonLines
from ingest.jsonl_format import learn_json_lines

NUMERIC = {"status_code", "latency_ms", "request_bytes", "response_bytes"}


def normalised(line: str) -> list[object]:
    """COPY text -> values, numbers compared as numbers (12 and 12.0 are the same double) and
    extras as JSON (both are stored as jsonb)."""
    fields = line.rstrip("\n").split("\t")
    out: list[object] = []
    for name, value in zip((*EVENT_COLUMNS, "extras", "batch"), fields, strict=True):
        if name in NUMERIC and value:
            out.append(float(value))
        elif name == "extras" and value:
            out.append(json.loads(value))
        else:
            out.append(value)
    return out


BASE = {
    "event_id": "e1",
    "occurred_at": "2026-11-20T10:00:00.123Z",
    "developer_id": "dev_1",
    "company_id": "co_1",
    "method": "GET",
    "path": "/v1/{id}/x?q=caf%C3%A9&b=1",
    "status_code": 200,
    "latency_ms": 12.5,
    "request_bytes": 10,
    "response_bytes": 2048,
    "environment": "production",
    "api_key_id": "key_1",
    "user_agent": "café/1.0 (X11, Linux)",
    "ip": "10.0.0.1",
}

ACCEPTED = [
    {},
    {"latency_ms": 12, "request_bytes": None, "response_bytes": 0},
    {"company_id": None, "method": None, "environment": None, "ip": ""},
    {"occurred_at": "2026-11-20 10:00:00+02:00"},
    {"occurred_at": "2026-12-31T23:59:59.999999-0530"},
    {"latency_ms": 0.0001},
    {"path": "null", "user_agent": "None"},
    {"region": "eu-west-1"},
    {"region": "eu", "tier": 3, "beta": True, "note": None, "": "empty key"},
]
REFUSED = [
    {"method": "get"},
    {"environment": "prod"},
    {"status_code": "200"},
    {"status_code": 999},
    {"status_code": True},
    {"latency_ms": -1},
    {"latency_ms": 1e300},
    {"occurred_at": "2024-02-29T10:00:00Z"},
    {"occurred_at": "2026-11-20x10:00:00"},
    {"occurred_at": "20261120T100000Z"},
    {"path": "tab\there"},
    {"path": "back\\slash"},
    {"path": 'say "hi"'},
    {"path": "bell\x07"},
    {"event_id": ""},
    {"developer_id": None},
    {"developer_id": 7},
    {"request_bytes": 1.5},
    {"request_bytes": 10**19},
    {"tags": ["a"]},
    {"score": 1.5},
]


def json_line(change: dict[str, object], compact: bool = False) -> str:
    row = {**BASE, **change}
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(row, ensure_ascii=False, separators=separators)


def general(line: str) -> str | None:
    return json_event(1, line, None, lambda *a: None, "7")


def fast(line: str, keys: list[str] | None = None, spaced: bool = True) -> str | None:
    """The fast path's COPY line for one JSON line, or None when it leaves the line alone."""
    lines = JsonLines(keys or list(BASE), "7", spaced=spaced)
    found = lines.findall(line + "\n")
    return lines.rows(found)[0] if found else None


@pytest.mark.parametrize("compact", [False, True], ids=["spaced", "compact"])
@pytest.mark.parametrize("change", ACCEPTED, ids=str)
def test_json_fast_path_agrees_with_general_path(change, compact):
    line = json_line(change, compact)
    out = fast(line)
    assert out is not None
    assert normalised(out) == normalised(general(line))
    # The pattern for compact files gives the same row, or leaves a spaced line alone.
    assert fast(line, spaced=False) == (out if compact else None)


@pytest.mark.parametrize("change", REFUSED, ids=str)
def test_json_fast_path_steps_aside(change):
    assert fast(json_line(change)) is None
    assert fast(json_line(change, True), spaced=False) is None


@pytest.mark.parametrize("compact", [False, True], ids=["spaced", "compact"])
def test_json_fast_path_pattern_follows_the_first_line(compact):
    text = "\n".join(json_line({}, compact) for _ in range(3)) + "\n"
    learned = learn_json_lines(text, "7")
    assert learned is not None
    assert len(learned.findall(text)) == 3
    # A compact first line picks the pattern without blanks; the spaced one accepts both forms.
    other = json_line({}, not compact) + "\n"
    assert learned.run(other).end() == (0 if compact else len(other))


def test_json_fast_path_refuses_a_repeated_canonical_key():
    line = json_line({})[:-1] + ', "developer_id": "someone_else"}'
    assert fast(line) is None
    assert general(line).split("\t")[2] == "someone_else"  # the last one wins in the general path


def test_json_fast_path_follows_the_first_lines_key_order():
    keys = ["developer_id", "occurred_at", "status_code", "event_id", "path"]
    row = {k: BASE[k] for k in keys}
    line = json.dumps(row)
    lines = JsonLines(keys, "7")
    out, ids = lines.rows(lines.findall(line + "\n"))
    assert ids == [row["event_id"]]
    # COPY order: the file's own columns, then the ones it lacks (NULL), then extras and batch
    assert out == "\t".join([*(str(row[k]) for k in keys), *[""] * 9, "", "7"]) + "\n"
    assert JsonLines(keys, "7").findall(json_line({}) + "\n") == []  # another order: general


def test_json_block_sends_odd_lines_to_the_general_path():
    good = json_line({})
    lines = [good, good, json_line({"method": "post"}), good, '{"broken": ', good]
    rejected: list[tuple[int, str, str]] = []
    pieces = JsonLines(list(BASE), "7").block(10, "\n".join(lines) + "\n", _collect(rejected), "7")
    out = "".join(p[0] if isinstance(p, tuple) else p for p in pieces)
    assert out.count("\n") == 5
    assert [row.split("\t")[4] for row in out.splitlines()] == ["GET", "GET", "POST", "GET", "GET"]
    assert rejected == [(14, "malformed JSON", '{"broken": ')]


def _collect(into: list[tuple[int, str, str]]):
    return lambda lineno, reason, raw: into.append((lineno, reason, raw))


def csv_line(change: dict[str, object]) -> str:
    row = {**BASE, "user_agent": "curl/8", **change}
    return ",".join("" if row[c] is None else str(row[c]) for c in EVENT_COLUMNS)


CSV_ACCEPTED = [
    {"user_agent": "curl/8"},
    {"company_id": None, "latency_ms": None, "environment": None, "method": None},
    {"occurred_at": "2026-11-20 10:00:00"},
    {"latency_ms": 7, "user_agent": "café"},
]
CSV_REFUSED = [
    {"user_agent": "a, b"},
    {"method": "get"},
    {"environment": "live"},
    {"status_code": 99},
    {"latency_ms": "1e3"},
    {"request_bytes": "1_000"},
    {"occurred_at": "2026-11-31T10:00:00Z"},
    {"occurred_at": "2026-11-20T25:00:00Z"},
    {"path": 'say "hi"'},
    {"path": "a\\b"},
    {"event_id": None},
]


@pytest.mark.parametrize("change", CSV_ACCEPTED, ids=str)
def test_csv_fast_path_agrees_with_general_path(change):
    fast = CsvFast(list(EVENT_COLUMNS), "7")
    line = csv_line(change)
    match = fast.match(line + "\n")
    assert match is not None and match.end() == len(line) + 1
    values = [None if v == "" else v for v in line.split(",")]
    expected = event_line(values, None, False, "7")
    assert normalised(fast.convert(line + "\n")) == normalised(expected)


@pytest.mark.parametrize("change", CSV_REFUSED, ids=str)
def test_csv_fast_path_steps_aside(change):
    line = csv_line(change)
    match = CsvFast(list(EVENT_COLUMNS), "7").match(line + "\n")
    assert match is None or match.end() == 0
