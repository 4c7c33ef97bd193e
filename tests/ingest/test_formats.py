"""Each input format lands as the same typed rows in raw.*."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from ingest.loader import detect_format, load_paths
from onramp.redaction import hash_api_key
from tests.ingest.conftest import events, rejects, rows

HEADER = (
    "event_id,occurred_at,developer_id,company_id,method,path,status_code,latency_ms,"
    "request_bytes,response_bytes,environment,api_key_id,user_agent,ip"
)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_canonical_csv(raw_engine, write, uid):
    path = write(
        "events.csv",
        HEADER + ",region\n"
        f"{uid}-1,2026-11-20T10:00:00Z,{uid}_dev,co_1,GET,/v1/users/42?x=1,200,12.5,100,2048,"
        "production,key_1,curl/8.4,10.0.0.1,eu\n"
        f'{uid}-2,2026-11-20 11:00:00,{uid}_dev,,post,"/v1/a,b",201,,,,sandbox,,"agent ""x""",,\n',
    )
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.format, result.rows_loaded, result.rows_rejected) == ("csv", 2, 0)
    first, second = events(raw_engine, uid)
    assert first["event_id"] == f"{uid}-1"
    assert first["occurred_at"] == ts("2026-11-20T10:00:00+00:00")
    assert (first["method"], first["path"], first["status_code"]) == (
        "GET",
        "/v1/users/42?x=1",
        200,
    )
    assert (first["latency_ms"], first["request_bytes"], first["response_bytes"]) == (
        12.5,
        100,
        2048,
    )
    assert (first["environment"], first["api_key_id"], first["ip"]) == (
        "production",
        "key_1",
        "10.0.0.1",
    )
    assert first["extras"] == {"region": "eu"}
    # no zone means UTC; empty fields are NULL; quoted commas and quotes survive
    assert second["occurred_at"] == ts("2026-11-20T11:00:00+00:00")
    assert (second["method"], second["path"], second["user_agent"]) == (
        "POST",
        "/v1/a,b",
        'agent "x"',
    )
    assert second["company_id"] is None and second["latency_ms"] is None
    assert second["extras"] is None
    assert second["batch_id"] == result.batch_id


def test_canonical_jsonl_matches_csv(raw_engine, write, uid):
    base = {
        "occurred_at": "2026-11-20T10:00:00+02:00",
        "developer_id": f"{uid}_dev",
        "method": "GET",
        "status_code": 200,
        "latency_ms": 12,
        "environment": "prod",
    }
    path = write(
        "events.jsonl",
        [
            {"event_id": f"{uid}-1", **base, "path": "/v1/x", "tags": ["a"]},
            {"event_id": f"{uid}-2", **base, "path": "tab\there", "company_id": None},
            {"event_id": f"{uid}-3", **base, "path": "null", "status_code": "404"},
        ],
    )
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.format, result.rows_loaded, result.rows_rejected) == ("jsonl", 3, 0)
    got = {e["event_id"]: e for e in events(raw_engine, uid)}
    assert got[f"{uid}-1"]["occurred_at"] == ts("2026-11-20T08:00:00+00:00")
    assert got[f"{uid}-1"]["extras"] == {"tags": ["a"]}
    assert got[f"{uid}-1"]["environment"] == "production"  # alias
    assert got[f"{uid}-2"]["path"] == "tab\there"
    assert got[f"{uid}-3"]["path"] == "null" and got[f"{uid}-3"]["status_code"] == 404


def test_jsonl_fast_path_and_general_path_agree(raw_engine, write, uid):
    """Thousands of regular rows (fast path) with odd ones mixed in (general path)."""
    lines = []
    for i in range(3000):
        row = {
            "event_id": f"{uid}-{i}",
            "occurred_at": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:{i % 60:02d}.{i % 1000:03d}Z",
            "developer_id": f"{uid}_d{i % 7}",
            "company_id": f"co{i % 3}",
            "method": "GET",
            "path": f"/v1/items/{i}",
            "status_code": 200 + (i % 3),
            "latency_ms": i % 50 + 0.5,
            "request_bytes": i,
            "response_bytes": None if i % 5 == 0 else 10 * i,
            "environment": "sandbox",
            "ip": "10.0.0.1",
        }
        if i % 97 == 0:
            row["company_id"] = None  # changes the token layout: general path
        if i % 131 == 0:
            row["method"] = "get"  # needs normalising: general path
        lines.append(json.dumps(row, separators=(",", ":")))
    path = write("events.jsonl", "\n".join(lines) + "\n")
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_rejected) == (3000, 0)
    got = {e["event_id"]: e for e in events(raw_engine, uid)}
    for i in (0, 1, 5, 97, 131, 2999):
        e = got[f"{uid}-{i}"]
        assert e["method"] == "GET"
        assert e["company_id"] == (None if i % 97 == 0 else f"co{i % 3}")
        assert e["response_bytes"] == (None if i % 5 == 0 else 10 * i)
        assert e["latency_ms"] == i % 50 + 0.5
        assert e["status_code"] == 200 + (i % 3)


def test_csv_fast_path_and_general_path_agree(raw_engine, write, uid):
    out = [HEADER]
    for i in range(3000):
        method = "get" if i % 101 == 0 else "GET"  # general path for the odd ones
        agent = '"a, b"' if i % 89 == 0 else "curl"
        out.append(
            f"{uid}-{i},2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,{uid}_d,,{method},/v1/{i},"
            f"{200 + i % 3},{i % 50},{i},,sandbox,,{agent},"
        )
    path = write("events.csv", "\n".join(out) + "\n")
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_rejected) == (3000, 0)
    got = {e["event_id"]: e for e in events(raw_engine, uid)}
    assert got[f"{uid}-101"]["method"] == "GET"
    assert got[f"{uid}-89"]["user_agent"] == "a, b"
    assert got[f"{uid}-1"]["user_agent"] == "curl" and got[f"{uid}-1"]["company_id"] is None


def test_moesif_json_lines(raw_engine, write, uid):
    event = {
        "request": {
            "time": "2026-11-20T10:00:00.000Z",
            "uri": "https://api.example.com/v1/users/7?expand=1",
            "verb": "GET",
            "headers": {"user-agent": "sdk/1.0", "Content-Length": "12"},
            "ip_address": "192.0.2.1",
        },
        "response": {"time": "2026-11-20T10:00:00.250Z", "status": 200, "headers": {}},
        "user_id": f"{uid}_dev",
        "company_id": "co_9",
        "session_token": "key_abc",
        "metadata": {"environment": "sandbox", "plan": "free"},
        "transaction_id": f"{uid}-tx1",
    }
    path = write("moesif.jsonl", [event])
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.format, result.rows_loaded) == ("moesif", 1)
    [e] = events(raw_engine, uid)
    assert e["event_id"] == f"{uid}-tx1"
    assert e["latency_ms"] == 250.0
    assert (e["method"], e["path"], e["status_code"]) == ("GET", "/v1/users/7?expand=1", 200)
    assert (e["user_agent"], e["request_bytes"], e["ip"]) == ("sdk/1.0", 12, "192.0.2.1")
    assert (e["api_key_id"], e["company_id"], e["environment"]) == ("key_abc", "co_9", "sandbox")
    assert e["extras"] == {"metadata": {"environment": "sandbox", "plan": "free"}}


@pytest.mark.parametrize("layout", ["pretty", "minified"])
def test_moesif_json_array_is_streamed(raw_engine, write, uid, layout):
    items = [
        {
            "request": {"time": f"2026-11-20T10:00:{i:02d}Z", "uri": f"/v1/x/{i}", "verb": "POST"},
            "response": {"time": f"2026-11-20T10:00:{i:02d}.5Z", "status": 201},
            "user_id": f"{uid}_dev",
        }
        for i in range(40)
    ]
    items.insert(3, {"request": {"time": "2026-11-20T10:00:00Z"}, "response": {"status": 200}})
    text = json.dumps(items, indent=2) if layout == "pretty" else json.dumps(items)
    path = write("moesif.json", text)
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.format, result.rows_loaded, result.rows_rejected) == ("moesif", 40, 1)
    got = events(raw_engine, uid)
    assert [e["path"] for e in got] == [f"/v1/x/{i}" for i in range(40)]
    assert {e["latency_ms"] for e in got} == {500.0}
    [(line, reason, _raw)] = rejects(raw_engine, result.batch_id)
    assert reason == "missing developer_id"
    starts = [n for n, text_line in enumerate(text.split("\n"), 1) if text_line == "  {"]
    assert line == (1 if layout == "minified" else starts[3])


ACCESS_LOG = (
    '192.0.2.10 - {uid}_alice [20/Nov/2026:10:00:00 +0100] "GET /v1/me HTTP/1.1" 200 512 '
    '"-" "curl/8"\n'
    '192.0.2.11 - - [20/Nov/2026:10:00:01 +0000] "POST /v1/orders?api_key={uid}_key HTTP/1.1" '
    '201 - "https://x.example" "sdk/2" rt=0.250\n'
    '{uid}_ip - - [20/Nov/2026:10:00:02 +0000] "GET /v1/health HTTP/1.1" 503 0 "-" "-" 0.010\n'
    '{uid}_ip - - [20/Nov/2026:10:00:02 +0000] "GET /v1/health HTTP/1.1" 503 0 "-" "-" 0.010\n'
)


def test_combined_log_default_caller(raw_engine, write, uid):
    path = write("access.log", ACCESS_LOG.format(uid=uid))
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.format, result.rows_loaded, result.rows_rejected) == ("combined", 4, 0)
    got = events(raw_engine, uid)
    assert [e["developer_id"] for e in got] == [
        f"{uid}_alice",  # remote user
        f"{uid}_key",  # else the api_key query parameter
        f"{uid}_ip",  # else the client IP
        f"{uid}_ip",  # the same line twice in one second: two calls, not a duplicate
    ]
    alice, keyed, health, _ = got
    assert alice["occurred_at"] == ts("2026-11-20T09:00:00+00:00")
    assert (alice["method"], alice["path"], alice["status_code"]) == ("GET", "/v1/me", 200)
    assert (alice["response_bytes"], alice["user_agent"]) == (512, "curl/8")
    # The key from the query string is stored hashed (tests/test_secrets_access_log.py).
    assert keyed["latency_ms"] == 250.0 and keyed["api_key_id"] == hash_api_key(f"{uid}_key")
    assert keyed["response_bytes"] is None
    assert health["latency_ms"] == 10.0


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("ip", ["192.0.2.10", "192.0.2.11"]),
        ("query:api_key", [None, "{uid}_key"]),
        ("remote-user", ["{uid}_alice", None]),
        ("header:X-Api-Key", [None, "{uid}_hdr"]),
    ],
)
def test_combined_log_caller_rules(raw_engine, write, uid, caller, expected):
    text = (
        f'192.0.2.10 - {uid}_alice [20/Nov/2026:10:00:00 +0000] "GET /v1/me HTTP/1.1" 200 5 '
        '"-" "c"\n'
        f'192.0.2.11 - - [20/Nov/2026:10:00:01 +0000] "GET /v1/o?api_key={uid}_key HTTP/1.1" '
        f'200 5 "-" "c" x_api_key="{uid}_hdr"\n'
    )
    path = write("access.log", text + f"# {caller}\n")
    [result] = load_paths(raw_engine, "api-events", [path], caller=caller)
    wanted = [e.format(uid=uid) if e else None for e in expected]
    assert result.rows_loaded == sum(1 for e in wanted if e)
    # the trailing comment line plus each call without a caller are rejected, never dropped
    reasons = [r[1] for r in rejects(raw_engine, result.batch_id)]
    assert reasons.count("missing developer_id") == wanted.count(None)
    assert reasons.count("unparsable log line") == 1
    if caller == "ip":
        got = rows(
            raw_engine,
            "select developer_id from raw.api_events where batch_id = :b order by occurred_at",
            b=result.batch_id,
        )
        assert [g["developer_id"] for g in got] == wanted
    else:
        assert [e["developer_id"] for e in events(raw_engine, uid)] == [w for w in wanted if w]


def test_developers_incidents_endpoints(raw_engine, write, uid):
    devs = write(
        "developers.csv",
        "developer_id,email,name,company_id,company_name,role,signed_up_at,plan,monthly_quota,"
        "timezone,marketing_opt_in,source\n"
        f"{uid}_1,a@example.com,Ann,co1,Acme,Engineering,2026-11-01T09:00:00Z,free,30000,"
        "Europe/Paris,yes,ads\n"
        f"{uid}_2,b@example.com,Bob,co1,Acme,,2026-11-02,pro,,UTC,false,\n"
        f"{uid}_3,c@example.com,Cy,co2,Beta,Developer Relations,,free,10,UTC,,\n",
    )
    incidents = write(
        "incidents.jsonl",
        [
            {
                "incident_id": f"{uid}_inc",
                "title": "Search down",
                "started_at": "2026-11-20T10:00:00Z",
                "ended_at": None,
                "affected_route": "/v1/search%",
            }
        ],
    )
    endpoints = write(
        "endpoints.csv",
        "route,feature_name,promoted,docs_url\n"
        f"/v1/{uid}/{{id}},Search,true,https://docs.example/search\n"
        f"/v1/{uid}/plain,,,\n",
    )
    results = load_paths(raw_engine, "developers", [devs])
    results += load_paths(raw_engine, "incidents", [incidents])
    results += load_paths(raw_engine, "endpoints", [endpoints])
    assert [(r.kind, r.format, r.rows_loaded, r.rows_rejected) for r in results] == [
        ("developers", "csv", 3, 0),
        ("incidents", "jsonl", 1, 0),
        ("endpoints", "csv", 2, 0),
    ]
    got = rows(
        raw_engine,
        "select * from raw.developers where developer_id like :p order by developer_id",
        p=uid + "%",
    )
    assert [g["role"] for g in got] == ["engineering", "unknown", "developer_relations"]
    assert [g["marketing_opt_in"] for g in got] == [True, False, None]
    assert [g["monthly_quota"] for g in got] == [30000, None, 10]
    assert got[0]["signed_up_at"] == ts("2026-11-01T09:00:00+00:00")
    assert got[1]["signed_up_at"] == ts("2026-11-02T00:00:00+00:00")
    assert got[0]["extras"] == {"source": "ads"} and got[0]["line_number"] == 2
    [inc] = rows(raw_engine, "select * from raw.incidents where incident_id = :i", i=f"{uid}_inc")
    assert inc["ended_at"] is None and inc["affected_route"] == "/v1/search%"
    eps = rows(
        raw_engine,
        "select * from raw.endpoints where route like :p order by route",
        p=f"/v1/{uid}/%",
    )
    assert [(e["route"], e["promoted"], e["feature_name"]) for e in eps] == [
        (f"/v1/{uid}/plain", False, None),
        (f"/v1/{uid}/{{id}}", True, "Search"),
    ]


@pytest.mark.parametrize(
    ("kind", "name", "content", "expected"),
    [
        ("api_events", "a.csv.gz", "x,y\n", "csv"),
        ("api_events", "a.json", '[{"request": {}}]', "moesif"),
        ("api_events", "a.jsonl", '{"request": {"time": "x"}}\n', "moesif"),
        ("api_events", "a.jsonl", '{"developer_id": "d"}\n', "jsonl"),
        ("api_events", "a.ndjson", '{"developer_id": "d"}\n', "jsonl"),
        ("api_events", "gateway.log", "anything\n", "combined"),
        (
            "api_events",
            "data",
            '1.2.3.4 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1\n',
            "combined",
        ),
        ("api_events", "data", "developer_id,occurred_at\n", "csv"),
        ("developers", "devs.json", '{"developer_id": "d"}\n', "jsonl"),
        ("developers", "devs", "developer_id,email\n", "csv"),
    ],
)
def test_format_detection(write, kind, name, content, expected):
    path = write(name, content, gz=name.endswith(".gz"))
    assert detect_format(kind, path) == expected


def test_moesif_array_with_a_broken_element_and_a_truncated_gzip(raw_engine, write, uid):
    def item(i: int) -> str:
        return json.dumps(
            {
                "request": {"time": f"2026-11-20T10:{i // 60:02d}:{i % 60:02d}Z", "uri": "/v1/a"},
                "response": {"time": f"2026-11-20T10:{i // 60:02d}:{i % 60:02d}.1Z", "status": 200},
                "user_id": f"{uid}_dev",
                "transaction_id": f"{uid}-{i}",
            }
        )

    body = [item(i) for i in range(3000)]
    body[1] = '{"request": {"time": "2026-11-20T10:00:01Z", "verb": GET}}'  # not JSON
    text = "[\n" + ",\n".join(body) + "\n]\n"
    [whole] = load_paths(raw_engine, "api-events", [write("moesif.json", text)])
    assert (whole.rows_loaded, whole.rows_rejected) == (2999, 1)
    assert rejects(raw_engine, whole.batch_id) == [(3, "malformed JSON", body[1])]

    uid2 = uid + "z"
    text2 = text.replace(uid, uid2)
    data = gzip.compress(text2.encode())
    [cut] = load_paths(raw_engine, "api-events", [write("moesif2.json.gz", data[: len(data) // 2])])
    assert 0 < cut.rows_loaded < 2999
    reasons = [r[1] for r in rejects(raw_engine, cut.batch_id)]
    assert reasons[-1] == "truncated gzip" and cut.rows_rejected == len(reasons)
    assert len(events(raw_engine, uid2)) == cut.rows_loaded
