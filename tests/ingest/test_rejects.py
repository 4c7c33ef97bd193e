"""Every reject reason: the bad row lands in raw.load_rejects (line, reason, raw text), the rows
around it still load, and the summary counts it."""

from __future__ import annotations

import gzip

import pytest

from ingest import loader, sources
from ingest.copy_encoding import REJECT_REASONS
from ingest.loader import load_paths
from tests.ingest.conftest import events, rejects, rows

HEADER = (
    "event_id,occurred_at,developer_id,status_code,latency_ms,request_bytes,response_bytes,"
    "environment"
)


def good(uid: str, n: int) -> str:
    return f"{uid}-{n},2026-11-20T10:00:0{n}Z,{uid}_dev,200,5,1,2,sandbox"


def csv_case(bad: str) -> str:
    return "\n".join([HEADER, "{good1}", bad, "{good2}"]) + "\n"


CSV_EVENT_CASES = {
    "missing developer_id": "{uid}-x,2026-11-20T10:00:00Z,,200,5,1,2,sandbox",
    "missing occurred_at": "{uid}-x,,{uid}_dev,200,5,1,2,sandbox",
    "unparsable timestamp": "{uid}-x,2026-02-30T10:00:00Z,{uid}_dev,200,5,1,2,sandbox",
    "bad status code": "{uid}-x,2026-11-20T10:00:00Z,{uid}_dev,999,5,1,2,sandbox",
    "bad latency_ms": "{uid}-x,2026-11-20T10:00:00Z,{uid}_dev,200,-5,1,2,sandbox",
    "bad request_bytes": "{uid}-x,2026-11-20T10:00:00Z,{uid}_dev,200,5,lots,2,sandbox",
    "bad response_bytes": "{uid}-x,2026-11-20T10:00:00Z,{uid}_dev,200,5,1,2.5,sandbox",
    "bad environment": "{uid}-x,2026-11-20T10:00:00Z,{uid}_dev,200,5,1,2,moon",
    "wrong number of fields": "{uid}-x,2026-11-20T10:00:00Z,{uid}_dev,200,5,1,2,sandbox,extra",
    "broken CSV quoting": '{uid}-x,2026-11-20T10:00:00Z,"{uid}_dev"x,200,5,1,2,sandbox',
    "NUL byte": "{uid}-x\x00,2026-11-20T10:00:00Z,{uid}_dev,200,5,1,2,sandbox",
}


@pytest.mark.parametrize("reason", sorted(CSV_EVENT_CASES))
def test_csv_event_rejects(raw_engine, write, uid, reason):
    bad = CSV_EVENT_CASES[reason].format(uid=uid)
    text = csv_case(bad).format(good1=good(uid, 1), good2=good(uid, 2))
    [result] = load_paths(raw_engine, "api-events", [write("events.csv", text)])
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert [e["event_id"] for e in events(raw_engine, uid)] == [f"{uid}-1", f"{uid}-2"]
    assert rejects(raw_engine, result.batch_id) == [(3, reason, bad.replace("\x00", "\ufffd"))]


def test_unterminated_quote_rejects_only_its_line(raw_engine, write, uid):
    bad = f'{uid}-x,2026-11-20T10:00:00Z,"{uid}_dev,200,5,1,2,sandbox'
    text = csv_case(bad).format(good1=good(uid, 1), good2=good(uid, 2))
    [result] = load_paths(raw_engine, "api-events", [write("events.csv", text)])
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert rejects(raw_engine, result.batch_id) == [(3, "broken CSV quoting", bad)]


def jsonl(uid: str, middle: str) -> str:
    line = (
        '{{"event_id": "{uid}-{n}", "occurred_at": "2026-11-20T10:00:0{n}Z", '
        '"developer_id": "{uid}_dev", "status_code": 200}}'
    )
    return "\n".join([line.format(uid=uid, n=1), middle, line.format(uid=uid, n=2)]) + "\n"


@pytest.mark.parametrize(
    ("reason", "bad"),
    [
        ("malformed JSON", '{"event_id": "x", "developer_id": '),
        ("not a JSON object", '["event_id", "developer_id"]'),
        (
            "bad value",
            '{"occurred_at": "2026-11-20T10:00:00Z", "developer_id": {"id": 1}, '
            '"status_code": 200}',
        ),
        ("missing developer_id", '{"occurred_at": "2026-11-20T10:00:00Z", "status_code": 200}'),
    ],
)
def test_jsonl_event_rejects(raw_engine, write, uid, reason, bad):
    [result] = load_paths(raw_engine, "api-events", [write("events.jsonl", jsonl(uid, bad))])
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert rejects(raw_engine, result.batch_id) == [(2, reason, bad)]


def test_invalid_utf8_line(raw_engine, write, uid):
    text = csv_case("BAD").format(good1=good(uid, 1), good2=good(uid, 2)).encode()
    data = text.replace(b"BAD", f"{uid}-x,2026-11-20T10:00:00Z,dev_\xe9".encode("latin-1"))
    [result] = load_paths(raw_engine, "api-events", [write("events.csv", data)])
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    [(line, reason, raw)] = rejects(raw_engine, result.batch_id)
    assert (line, reason) == (3, "invalid UTF-8") and raw.endswith("dev_\ufffd")


def test_line_too_long(raw_engine, write, uid, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(loader, "READ_CHUNK", 256)
    bad = f"{uid}-x,2026-11-20T10:00:00Z,{uid}_dev,200,5,1,2," + "x" * 5000
    text = csv_case(bad).format(good1=good(uid, 1), good2=good(uid, 2))
    path = write("events.csv", text)
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    [(line, reason, raw)] = rejects(raw_engine, result.batch_id)
    assert (line, reason) == (3, "line too long") and raw.startswith(f"{uid}-x,")


def test_unparsable_log_line(raw_engine, write, uid):
    ok = '192.0.2.1 - {uid}_dev [20/Nov/2026:10:00:0{n} +0000] "GET /v1/x HTTP/1.1" 200 5 "-" "c"'
    bad = "\x16\x03\x01 garbage from a TLS client"
    text = "\n".join([ok.format(uid=uid, n=1), bad, ok.format(uid=uid, n=2)]) + "\n"
    [result] = load_paths(raw_engine, "api-events", [write("access.log", text)])
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert rejects(raw_engine, result.batch_id) == [(2, "unparsable log line", bad)]


def test_truncated_gzip_keeps_rows_before_the_break(raw_engine, write, uid):
    lines = [HEADER] + [
        f"{uid}-{i},2026-11-20T10:{i // 60 % 60:02d}:{i % 60:02d}Z,{uid}_dev,200,{i},{i * 7},"
        f"{i * 13},sandbox"
        for i in range(20000)
    ]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    path = write("events.csv.gz", data[: len(data) // 2])
    [result] = load_paths(raw_engine, "api-events", [path])
    loaded = events(raw_engine, uid)
    assert 1000 < result.rows_loaded < 20000 and len(loaded) == result.rows_loaded
    # exactly the first rows, intact
    assert {e["event_id"] for e in loaded} == {f"{uid}-{i}" for i in range(len(loaded))}
    assert all(e["request_bytes"] == int(e["event_id"].split("-")[1]) * 7 for e in loaded)
    [(line, reason, raw)] = rejects(raw_engine, result.batch_id)
    assert (line, reason) == (result.rows_loaded + 2, "truncated gzip")
    assert lines[line - 1].startswith(raw)  # the partial line that was cut
    assert result.rows_rejected == 1


def test_corrupt_gzip(raw_engine, write, uid):
    lines = [HEADER] + [good(uid, 1), good(uid, 2)]
    data = bytearray(gzip.compress(("\n".join(lines) + "\n").encode()))
    data[-6] ^= 0xFF  # breaks the CRC check at the end of the stream
    [result] = load_paths(raw_engine, "api-events", [write("events.csv.gz", bytes(data))])
    reasons = [r[1] for r in rejects(raw_engine, result.batch_id)]
    assert "corrupt gzip" in reasons and result.rows_rejected == len(reasons)


@pytest.mark.parametrize(
    ("kind", "header", "bad", "reason"),
    [
        (
            "incidents",
            "incident_id,title,started_at,ended_at,affected_route",
            ",t,2026-11-20T10:00:00Z,,/v1/x",
            "missing incident_id",
        ),
        (
            "incidents",
            "incident_id,title,started_at,ended_at,affected_route",
            "{uid}_i,t,,,/v1/x",
            "missing started_at",
        ),
        (
            "incidents",
            "incident_id,title,started_at,ended_at,affected_route",
            "{uid}_i,t,2026-11-20T10:00:00Z,,",
            "missing affected_route",
        ),
        (
            "incidents",
            "incident_id,title,started_at,ended_at,affected_route",
            "{uid}_i,t,2026-11-20T10:00:00Z,soon,/v1/x",
            "unparsable timestamp",
        ),
        ("endpoints", "route,feature_name,promoted,docs_url", ",f,true,", "missing route"),
        ("endpoints", "route,feature_name,promoted,docs_url", "/v1/{uid},f,maybe,", "bad promoted"),
        (
            "developers",
            "developer_id,email,monthly_quota,marketing_opt_in",
            "{uid}_d,a@example.com,lots,true",
            "bad monthly_quota",
        ),
        (
            "developers",
            "developer_id,email,monthly_quota,marketing_opt_in",
            "{uid}_d,a@example.com,10,perhaps",
            "bad marketing_opt_in",
        ),
        (
            "developers",
            "developer_id,email,monthly_quota,marketing_opt_in",
            ",a@example.com,10,true",
            "missing developer_id",
        ),
    ],
)
def test_table_rejects(raw_engine, write, uid, kind, header, bad, reason):
    bad = bad.format(uid=uid)
    [result] = load_paths(raw_engine, kind, [write(f"{kind}.csv", f"{header}\n{bad}\n")])
    assert (result.rows_loaded, result.rows_rejected) == (0, 1)
    assert rejects(raw_engine, result.batch_id) == [(2, reason, bad)]
    batch = rows(
        raw_engine, "select * from raw.load_batches where batch_id = :b", b=result.batch_id
    )
    assert (batch[0]["rows_rejected"], batch[0]["status"]) == (1, "loaded")


def test_every_reason_is_exercised():
    """The reasons above, plus those of other formats, cover REJECT_REASONS."""
    covered = set(CSV_EVENT_CASES) | {
        "malformed JSON",
        "not a JSON object",
        "bad value",
        "invalid UTF-8",
        "line too long",
        "unparsable log line",
        "truncated gzip",
        "corrupt gzip",
        "gzip over size limit",  # test_odd_input
        "missing incident_id",
        "missing started_at",
        "missing affected_route",
        "missing route",
        "bad promoted",
        "bad monthly_quota",
        "bad marketing_opt_in",
    }
    assert covered == set(REJECT_REASONS)
