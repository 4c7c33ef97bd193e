"""The Spark loader against the PostgreSQL loader on the same files: the same rows, event ids,
rejects (line and reason), duplicates and skipped reloads.

One Spark session for the whole file (starting one takes seconds) and small files: every Spark
job costs about a second on a shared laptop. The Spark raw tables are shared by the tests, so each
reads back only its own batches.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.loader import load_manifest_dir, load_paths
from onramp.raw_schema import ensure_raw_schema
from tests.ingest.conftest import rejects, rows
from tests.ingest.test_rejects import CSV_EVENT_CASES

HEADER = (
    "event_id,occurred_at,developer_id,status_code,latency_ms,request_bytes,response_bytes,"
    "environment"
)


@pytest.fixture(scope="session")
def spark(onramp_home: Path) -> Any:
    from onramp.spark import java_problem

    problem = java_problem()
    if problem:
        pytest.skip(problem)
    from onramp.raw_schema import ensure_raw_schema_spark
    from onramp.settings import Settings
    from onramp.spark import spark_session

    session = spark_session(Settings.from_env())
    ensure_raw_schema_spark(session)
    return session


def spark_load(spark: Any, kind: str, path: Path, fmt: str = "auto", caller: str | None = None):
    from ingest.spark.load import load_paths_spark

    [result] = load_paths_spark(spark, kind, [path], fmt, caller)
    return result


def spark_rows(spark: Any, sql: str) -> list[dict[str, Any]]:
    return [row.asDict() for row in spark.sql(sql).collect()]


def spark_rejects(spark: Any, batch_id: int) -> list[tuple[int, str, str]]:
    found = spark_rows(
        spark,
        "select line_number, reason, raw_text from raw.load_rejects"
        f" where batch_id = {batch_id} order by line_number, reason",
    )
    return [(r["line_number"], r["reason"], r["raw_text"]) for r in found]


def event_ids(spark: Any, batch_ids: list[int]) -> set[str]:
    ids = ", ".join(str(b) for b in batch_ids)
    found = spark_rows(spark, f"select event_id from raw.api_events where batch_id in ({ids})")
    return {r["event_id"] for r in found}


def pg_event_ids(engine, batch_ids: list[int]) -> set[str]:
    found = rows(
        engine,
        "select event_id from raw.api_events where batch_id = any(:b)",
        b=[b for b in batch_ids],
    )
    return {r["event_id"] for r in found}


def counts(result) -> tuple[int, int, int, bool]:
    return (result.rows_loaded, result.rows_duplicate, result.rows_rejected, result.skipped)


@pytest.fixture
def fresh_raw_engine(engine: sa.Engine) -> Any:
    """A database of its own on the session's server: other tests load the same endpoint catalog
    (same checksum) into the session's database, which would make PostgreSQL skip it here."""
    name = "spark_load_compare"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"drop database if exists {name} with (force)"))
        conn.execute(sa.text(f"create database {name}"))
    fresh = sa.create_engine(engine.url.set(database=name))
    ensure_raw_schema(fresh)
    yield fresh
    fresh.dispose()


def test_sample_data_loads_as_on_postgres(spark, fresh_raw_engine, tmp_path):
    from sample_data import generate

    raw_engine = fresh_raw_engine
    out = tmp_path / "sample"
    # A seed of its own: other tests load sample data into the same PostgreSQL.
    generate(out, developers=6, days=14, seed=1515, as_of=date(2026, 11, 30))
    landed = time.time() - 60  # landed files, not ones still being written
    for path in out.iterdir():
        os.utime(path, (landed, landed))
    on_pg = load_manifest_dir(raw_engine, out)
    manifest = json.loads((out / "manifest.json").read_text())
    on_spark = [
        spark_load(spark, entry["kind"], out / entry["path"], entry["format"])
        for entry in sorted(
            manifest["files"],
            key=lambda e: ["developers", "endpoints", "incidents", "api_events"].index(
                e["kind"].replace("-", "_")
            ),
        )
    ]
    assert [(r.path, r.kind, r.format) for r in on_spark] == [
        (r.path, r.kind, r.format) for r in on_pg
    ]
    assert [counts(r) for r in on_spark] == [counts(r) for r in on_pg]
    assert (
        sum(r.rows_loaded for r in on_spark if r.kind == "api_events")
        == (manifest["events"]["distinct"])
    )
    spark_events = [r.batch_id for r in on_spark if r.kind == "api_events"]
    pg_events = [r.batch_id for r in on_pg if r.kind == "api_events"]
    assert event_ids(spark, spark_events) == pg_event_ids(raw_engine, pg_events)
    [spark_devs] = [r.batch_id for r in on_spark if r.kind == "developers"]
    [pg_devs] = [r.batch_id for r in on_pg if r.kind == "developers"]
    columns = "developer_id, email, role, plan, monthly_quota, marketing_opt_in, line_number"
    assert spark_rows(
        spark, f"select {columns} from raw.developers where batch_id = {spark_devs} order by 7"
    ) == rows(
        raw_engine, f"select {columns} from raw.developers where batch_id = {pg_devs} order by 7"
    )


def test_bad_rows_are_rejected_with_the_postgres_reasons(spark, raw_engine, write, uid):
    cases = sorted(CSV_EVENT_CASES)
    lines = [HEADER, f"{uid}-1,2026-11-20T10:00:01Z,{uid}_dev,200,5,1,2,sandbox"]
    lines += [CSV_EVENT_CASES[reason].format(uid=uid) for reason in cases]
    lines.append(f"{uid}-2,2026-11-20 10:00:02,{uid}_dev,201,,,,prod")
    path = write("events.csv", "\n".join(lines) + "\n")
    [on_pg] = load_paths(raw_engine, "api-events", [path])
    on_spark = spark_load(spark, "api-events", path)
    assert counts(on_spark) == counts(on_pg) == (2, 0, len(cases), False)
    assert spark_rejects(spark, on_spark.batch_id) == rejects(raw_engine, on_pg.batch_id)
    assert event_ids(spark, [on_spark.batch_id]) == {f"{uid}-1", f"{uid}-2"}


def test_bad_json_lines_and_ids_derived_as_on_postgres(spark, raw_engine, write, uid):
    good = {"occurred_at": "2026-11-20T10:00:00.250+01:00", "developer_id": f"{uid}_dev"}
    lines = [
        json.dumps({**good, "status_code": 200, "latency_ms": 12, "region": "eu"}),  # hashed id
        '{"event_id": "x", "developer_id": ',
        "",
        '["event_id", "developer_id"]',
        json.dumps({**good, "developer_id": {"id": 1}, "status_code": 200}),
        json.dumps({**good, "status_code": 200, "occurred_at": 1763632800}),
        json.dumps({**good, "status_code": "200", "request_bytes": -1}),
        json.dumps({**good, "status_code": 404, "environment": "Live", "method": "post"}),
    ]
    path = write("events.jsonl", "\n".join(lines) + "\n")
    [on_pg] = load_paths(raw_engine, "api-events", [path])
    on_spark = spark_load(spark, "api-events", path)
    assert counts(on_spark) == counts(on_pg) == (2, 0, 5, False)
    assert spark_rejects(spark, on_spark.batch_id) == rejects(raw_engine, on_pg.batch_id)
    assert event_ids(spark, [on_spark.batch_id]) == pg_event_ids(raw_engine, [on_pg.batch_id])
    [row] = spark_rows(
        spark,
        "select method, environment, extras from raw.api_events"
        f" where batch_id = {on_spark.batch_id} and status_code = 404",
    )
    assert row == {"method": "POST", "environment": "production", "extras": None}


def test_reload_adds_nothing_and_known_events_are_duplicates(spark, write, uid):
    events = [
        {
            "event_id": f"{uid}-{i}",
            "occurred_at": f"2026-11-{20 + i % 3}T10:00:00Z",
            "developer_id": f"{uid}_dev",
            "status_code": 200,
        }
        for i in range(6)
    ]
    first_file = write("first.jsonl.gz", events[:4] + events[:1], gz=True)  # one repeat inside
    first = spark_load(spark, "api-events", first_file)
    again = spark_load(spark, "api-events", first_file)
    overlapping = spark_load(spark, "api-events", write("second.jsonl", events[2:]))
    assert counts(first) == (4, 1, 0, False)
    assert counts(again) == (0, 0, 0, True) and again.batch_id == first.batch_id
    assert counts(overlapping) == (2, 2, 0, False)
    assert event_ids(spark, [first.batch_id, overlapping.batch_id]) == {
        e["event_id"] for e in events
    }
    states = spark_rows(
        spark,
        "select status, checksum from raw.load_batches"
        f" where batch_id = {first.batch_id} order by status",
    )
    assert states == [
        {"status": "loaded", "checksum": first.checksum},
        {"status": "loading", "checksum": first.checksum},
    ]


def test_moesif_and_access_log_as_on_postgres(spark, raw_engine, write, uid):
    moesif = [
        {
            "request": {
                "time": f"2026-11-20T10:00:0{i}.000Z",
                "uri": f"https://api.example.com/v1/items/{i}?q=1",
                "verb": "GET",
                "headers": {"User-Agent": "curl/8", "Content-Length": "12"},
                "ip_address": "10.0.0.1",
            },
            "response": {"time": f"2026-11-20T10:00:0{i}.120Z", "status": 200},
            "user_id": f"{uid}_dev",
            "transaction_id": f"{uid}-m{i}",
            "metadata": {"environment": "production"},
        }
        for i in range(3)
    ]
    elements = [json.dumps(event) for event in moesif]
    elements[1] = elements[1][:60]  # a broken element: rejected, the array read on
    moesif_text = "[\n" + ",\n".join(elements) + "\n]\n"
    log_lines = [
        f'10.0.0.2 - {uid}_dev [20/Nov/2026:10:00:01 +0000] "GET /v1/a HTTP/1.1" 200 12'
        ' "-" "curl/8" rt=0.012',
        f'10.0.0.2 - {uid}_dev [20/Nov/2026:10:00:01 +0000] "GET /v1/a HTTP/1.1" 200 12'
        ' "-" "curl/8" rt=0.012',
        "not a log line",
        f'10.0.0.3 - - [20/Nov/2026:10:00:02 +0000] "POST /v1/b?api_key={uid}_k HTTP/1.1" 201 -'
        ' "-" "okhttp"',
    ]
    for name, text, fmt in [
        ("moesif.json", moesif_text, "moesif"),
        ("access.log", "\n".join(log_lines) + "\n", "combined"),
    ]:
        path = write(name, text)
        [on_pg] = load_paths(raw_engine, "api-events", [path])
        on_spark = spark_load(spark, "api-events", path)
        assert on_spark.format == fmt
        assert counts(on_spark) == counts(on_pg)
        assert on_spark.rows_loaded >= 2 and on_spark.rows_rejected == 1
        assert spark_rejects(spark, on_spark.batch_id) == rejects(raw_engine, on_pg.batch_id)
        assert event_ids(spark, [on_spark.batch_id]) == pg_event_ids(raw_engine, [on_pg.batch_id])


def test_a_file_that_cannot_load_is_a_failed_batch(spark, write, uid):
    result = spark_load(spark, "developers", write("devs.csv", "email,name\na@example.com,A\n"))
    assert result.failed and "no developer_id column" in result.error
    [row] = spark_rows(
        spark,
        f"select status, error from raw.load_batches where batch_id = {result.batch_id}"
        " and status != 'loading'",
    )
    assert row == {"status": "failed", "error": result.error}


def test_gzip_found_by_its_bytes(spark, tmp_path, uid):
    path = tmp_path / "incidents.data"  # no .gz in the name: Spark would read the bytes as text
    text = json.dumps(
        {"incident_id": f"{uid}-i", "started_at": "2026-11-20T10:00:00Z", "affected_route": "/v1"}
    )
    path.write_bytes(gzip.compress((text + "\n").encode()))
    result = spark_load(spark, "incidents", path, "jsonl")
    assert counts(result) == (1, 0, 0, False)
    [row] = spark_rows(
        spark,
        f"select incident_id, line_number from raw.incidents where batch_id = {result.batch_id}",
    )
    assert row == {"incident_id": f"{uid}-i", "line_number": 1}


def test_onramp_load_command_on_spark(spark, write, uid, monkeypatch):
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.setenv("ONRAMP_WAREHOUSE", "spark")
    good = write("a.csv", HEADER + f"\n{uid}-1,2026-11-20T10:00:01Z,{uid}_dev,200,5,1,2,sandbox\n")
    bad = write("b.csv", "email\na@example.com\n")
    try:
        result = CliRunner().invoke(cli, ["load", "api-events", str(good), str(bad)])
    finally:
        # The command's log file lives in the session's ONRAMP_HOME, removed before py4j logs
        # its shutdown at exit.
        from cli import logs

        for handler in logs._installed:
            logging.getLogger().removeHandler(handler)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[2].split()[:5] == [str(good), "csv", "1", "0", "0"]
    assert lines[3].split()[-1] == "failed"
    assert "no developer_id column" in result.stderr


def test_truncated_gzip_is_a_failed_batch(spark, write, uid):
    rows_text = "".join(
        json.dumps(
            {"event_id": f"{uid}-{i}", "occurred_at": "2026-11-20T10:00:00Z",
             "developer_id": f"{uid}_dev", "status_code": 200, "pad": "x" * (i % 97)}
        ) + "\n"
        for i in range(2000)
    )  # fmt: skip
    whole = gzip.compress(rows_text.encode())
    result = spark_load(spark, "api-events", write("cut.jsonl.gz", whole[: len(whole) // 2]))
    assert result.failed and result.error.startswith("corrupt or truncated gzip, nothing of it")
    assert event_ids(spark, [result.batch_id]) == set()


def test_unfinished_end_of_a_file_being_written_is_held_back(spark, tmp_path, uid):
    def line(i: int) -> str:
        return json.dumps(
            {"event_id": f"{uid}-{i}", "occurred_at": "2026-11-20T10:00:00Z",
             "developer_id": f"{uid}_dev", "status_code": 200}
        )  # fmt: skip

    path = tmp_path / "growing.jsonl"
    path.write_text(line(1) + "\n" + line(2)[:30])  # written just now, the last line unfinished
    first = spark_load(spark, "api-events", path)
    assert counts(first) == (1, 0, 0, False) and first.notes
    path.write_text(line(1) + "\n" + line(2) + "\n")
    landed = time.time() - 60
    os.utime(path, (landed, landed))
    second = spark_load(spark, "api-events", path)
    assert counts(second) == (1, 1, 0, False)
    assert event_ids(spark, [first.batch_id, second.batch_id]) == {f"{uid}-1", f"{uid}-2"}
    [status] = spark_rows(
        spark,
        f"select status from raw.load_batches where batch_id = {first.batch_id}"
        " and status != 'loading'",
    )
    assert status == {"status": "partial"}
