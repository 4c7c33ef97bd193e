"""Batch guarantees: idempotent reloads, atomic files (even when killed), gzip, BOM and CRLF."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest import loader, sources
from ingest.loader import LoadError, load_manifest_dir, load_paths
from tests.ingest.conftest import events, rejects, rows

REPO = Path(__file__).resolve().parents[2]
HEADER = "event_id,occurred_at,developer_id,method,path,status_code,latency_ms"


def csv_rows(uid: str, n: int, start: int = 0, with_id: bool = True) -> str:
    out = []
    for i in range(start, start + n):
        eid = f"{uid}-{i}" if with_id else ""
        out.append(f"{eid},2026-11-20T10:00:{i % 60:02d}.{i:06d}Z,{uid}_dev,GET,/v1/{i},200,{i}")
    return "\n".join(out) + "\n"


def count(engine, uid: str) -> int:
    return len(events(engine, uid))


def test_same_file_twice_adds_nothing(raw_engine, write, uid):
    path = write("events.csv", HEADER + "\n" + csv_rows(uid, 50))
    [first] = load_paths(raw_engine, "api-events", [path])
    [second] = load_paths(raw_engine, "api-events", [path])
    assert (first.rows_loaded, first.skipped) == (50, False)
    assert (second.rows_loaded, second.skipped, second.batch_id) == (0, True, first.batch_id)
    assert count(raw_engine, uid) == 50
    batches = rows(
        raw_engine,
        "select status, rows_loaded, format, path from raw.load_batches where checksum = :c",
        c=first.checksum,
    )
    assert batches == [
        {"status": "loaded", "rows_loaded": 50, "format": "csv", "path": str(path.resolve())}
    ]


@pytest.mark.parametrize("case", ["csv events", "moesif events", "developers"])
def test_same_bytes_under_another_name_are_skipped(raw_engine, write, uid, case):
    # The checksum is taken while the file is read: a copy is recognised at its first event_id
    # conflict (events) or at the end of the read (dimensions), and nothing of it is kept.
    kind, name = ("developers", "d.csv") if case == "developers" else ("api-events", "e.csv")
    if case == "csv events":
        text = HEADER + "\n" + csv_rows(uid, 40)
    elif case == "moesif events":  # its reader peeks at the head first: hashed once all the same
        name = "moesif.json"
        text = json.dumps(
            [
                {
                    "request": {"time": f"2026-11-20T10:00:{i:02d}Z", "uri": f"/v1/{i}"},
                    "response": {"status": 200},
                    "user_id": f"{uid}_dev",
                    "transaction_id": f"{uid}-{i}",
                }
                for i in range(40)
            ]
        )
    else:
        text = "developer_id,email,signed_up_at\n" + "".join(
            f"{uid}_d{i},{uid}{i}@example.com,2026-11-01T00:00:00Z\n" for i in range(5)
        )
    original = write(name, text)
    copy = write("copy_" + name, text)
    [first] = load_paths(raw_engine, kind, [original])
    assert first.checksum == hashlib.sha256(original.read_bytes()).hexdigest()
    [again] = load_paths(raw_engine, kind, [original])
    [second] = load_paths(raw_engine, kind, [copy])
    for skipped in (again, second):
        assert (skipped.skipped, skipped.rows_loaded, skipped.batch_id) == (
            True,
            0,
            first.batch_id,
        )
        assert skipped.checksum == first.checksum
    assert rows(
        raw_engine,
        "select status from raw.load_batches where checksum = :c or path = :p",
        c=first.checksum,
        p=str(copy.resolve()),
    ) == [{"status": "loaded"}]


def test_checksum_covers_only_what_was_read(tmp_path):
    # A file that grows after its read (a live log) keeps the checksum of the bytes loaded, so
    # the grown file is not mistaken for one loaded before.
    path = tmp_path / "live.log"
    path.write_bytes(b"a\n" * 100_000)
    digest = sources.FileDigest(path)
    for _ in sources.Source(path, chunk_size=4096, digest=digest).blocks():
        pass
    with open(path, "ab") as fh:
        fh.write(b"late\n")
    assert digest.hexdigest() == hashlib.sha256(b"a\n" * 100_000).hexdigest()
    stopped = sources.FileDigest(path)  # a reader that stops early: the rest is read here
    next(sources.Source(path, chunk_size=4096, digest=stopped).blocks())
    assert stopped.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_loads_of_the_same_bytes_at_once_load_them_once(raw_engine, write, uid):
    from concurrent.futures import ThreadPoolExecutor

    paths = [write(f"{name}.csv", HEADER + "\n" + csv_rows(uid, 2000)) for name in "ab"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: load_paths(raw_engine, "api-events", [p])[0], paths))
    assert sorted(r.skipped for r in results) == [False, True]
    assert sum(r.rows_loaded for r in results) == 2000
    assert count(raw_engine, uid) == 2000


def test_same_rows_in_another_file_add_nothing(raw_engine, write, uid):
    [a] = load_paths(raw_engine, "api-events", [write("a.csv", HEADER + "\n" + csv_rows(uid, 30))])
    # overlapping file: 20 rows already loaded, 10 new, one repeated inside the file
    text = HEADER + "\n" + csv_rows(uid, 30, start=10) + csv_rows(uid, 1, start=39)
    [b] = load_paths(raw_engine, "api-events", [write("b.csv", text)])
    assert (a.rows_loaded, a.rows_duplicate) == (30, 0)
    assert (b.rows_loaded, b.rows_duplicate, b.rows_rejected) == (10, 21, 0)
    assert count(raw_engine, uid) == 40


def test_rows_without_event_id_hash_the_same_in_csv_and_jsonl(raw_engine, write, uid):
    csv_path = write("a.csv", HEADER + "\n" + csv_rows(uid, 5, with_id=False))
    as_json = [
        {
            "occurred_at": f"2026-11-20T10:00:{i:02d}.{i:06d}+00:00",
            "developer_id": f"{uid}_dev",
            "method": "get",
            "path": f"/v1/{i}",
            "status_code": 200,
            "latency_ms": float(i),
        }
        for i in range(7)
    ]
    [a] = load_paths(raw_engine, "api-events", [csv_path])
    [b] = load_paths(raw_engine, "api-events", [write("b.jsonl", as_json)])
    assert (a.rows_loaded, b.rows_loaded, b.rows_duplicate) == (5, 2, 5)
    ids = [e["event_id"] for e in events(raw_engine, uid)]
    assert len(set(ids)) == 7 and all(len(i) == 32 for i in ids)


def test_gzip_loads_like_plain(raw_engine, write, uid):
    text = HEADER + "\n" + csv_rows(uid, 100)
    # two gzip members back to back, as `cat a.gz b.gz` makes
    lines = text.splitlines(keepends=True)
    data = gzip.compress("".join(lines[:40]).encode()) + gzip.compress("".join(lines[40:]).encode())
    [result] = load_paths(raw_engine, "api-events", [write("events.csv.gz", data)])
    assert (result.format, result.rows_loaded, result.rows_rejected) == ("csv", 100, 0)
    assert sorted(e["latency_ms"] for e in events(raw_engine, uid)) == [
        float(i) for i in range(100)
    ]


def test_bom_and_crlf(raw_engine, write, uid):
    csv_text = "\ufeff" + (HEADER + "\n" + csv_rows(uid, 3)).replace("\n", "\r\n")
    json_text = (
        "\ufeff"
        + json.dumps(
            {
                "event_id": f"{uid}-j",
                "occurred_at": "2026-11-20T11:00:00Z",
                "developer_id": f"{uid}_dev",
                "status_code": 200,
                "ip": "10.0.0.9",
            }
        )
        + "\r\n"
    )
    results = load_paths(
        raw_engine, "api-events", [write("bom.csv", csv_text), write("bom.jsonl", json_text)]
    )
    assert [(r.rows_loaded, r.rows_rejected) for r in results] == [(3, 0), (1, 0)]
    got = events(raw_engine, uid)
    assert [e["event_id"] for e in got] == [f"{uid}-0", f"{uid}-1", f"{uid}-2", f"{uid}-j"]
    assert got[2]["latency_ms"] == 2.0  # the last CSV column carries no "\r"
    assert got[3]["ip"] == "10.0.0.9"


def test_developers_bom_crlf_gzip(raw_engine, write, uid):
    text = "\ufeffdeveloper_id,email,role\r\n" + f"{uid}_1,a@example.com,sales\r\n"
    [result] = load_paths(raw_engine, "developers", [write("devs.csv.gz", text, gz=True)])
    assert (result.format, result.rows_loaded) == ("csv", 1)
    [dev] = rows(raw_engine, "select * from raw.developers where developer_id = :d", d=f"{uid}_1")
    assert (dev["email"], dev["role"]) == ("a@example.com", "sales")


KILL_SCRIPT = """
import sys, time
from onramp.warehouse import get_engine
from ingest.loader import load_paths
calls = 0
def progress(n):
    global calls
    calls += 1
    if calls == 3:  # two chunks parsed and sent to COPY: stall here, mid-file
        print("stalled", flush=True)
        time.sleep(120)
load_paths(get_engine(), "api-events", [sys.argv[1]], progress=progress)
"""


def test_killed_load_leaves_nothing_and_rerun_loads_all(raw_engine, write, uid, pg_url):
    n = 40_000
    path = write("big.csv", HEADER + "\n" + csv_rows(uid, n))
    assert path.stat().st_size > 40 * loader.READ_CHUNK  # stalled after two chunks: mid-file
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "ONRAMP_DATABASE_URL": pg_url},
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "stalled"
        # the server really holds rows of this file in an open COPY
        deadline = time.monotonic() + 30
        sent = 0
        while time.monotonic() < deadline and sent == 0:
            progress = rows(
                raw_engine,
                "select coalesce(max(tuples_processed), 0) as n from pg_stat_progress_copy"
                " where relid = 'raw.api_events'::regclass",
            )
            sent = progress[0]["n"]
            time.sleep(0.1)
        assert sent > 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # nothing of the batch: no rows, no batch record, no rejects
    deadline = time.monotonic() + 30
    while rows(raw_engine, "select 1 from pg_stat_progress_copy") and time.monotonic() < deadline:
        time.sleep(0.1)  # the server notices the dead client and rolls back
    assert count(raw_engine, uid) == 0
    assert rows(raw_engine, "select * from raw.load_batches where path = :p", p=str(path)) == []
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.skipped) == (n, False)
    assert count(raw_engine, uid) == n


def test_load_manifest_dir_loads_dimensions_first(raw_engine, tmp_path, uid):
    (tmp_path / "events.csv").write_text(HEADER + "\n" + csv_rows(uid, 3))
    (tmp_path / "devs.jsonl").write_text(json.dumps({"developer_id": f"{uid}_dev"}) + "\n")
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "files": [
                    {"path": "events.csv", "kind": "api_events", "format": "csv", "caller": None},
                    {"path": "devs.jsonl", "kind": "developers", "format": "jsonl"},
                ]
            }
        )
    )
    results = load_manifest_dir(raw_engine, tmp_path)
    assert [(r.kind, r.rows_loaded) for r in results] == [("developers", 1), ("api_events", 3)]
    assert load_manifest_dir(raw_engine, tmp_path)[0].skipped


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("api-events", ["missing.csv"]), "no such file: missing.csv"),
        (
            ("api-events", ["x.csv"], "xml"),
            "unknown format 'xml' for api-events: use auto, jsonl, csv, moesif, combined",
        ),
        (
            ("planets", ["x.csv"]),
            "unknown kind 'planets': use api-events, developers, incidents or endpoints",
        ),
    ],
)
def test_bad_input_is_one_clear_error(raw_engine, write, args, message, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    write("x.csv", "a,b\n")
    kind, paths, *fmt = args
    with pytest.raises(LoadError) as exc:
        load_paths(raw_engine, kind, paths, *fmt)
    assert str(exc.value) == message


def test_csv_without_required_column_is_rejected_whole(raw_engine, write, uid):
    path = write("events.csv", "event_id,occurred_at\nx,2026-11-20T10:00:00Z\n")
    [result] = load_paths(raw_engine, "api-events", [path])
    assert result.failed and "no developer_id column in the CSV header" in result.error
    failed = rows(
        raw_engine,
        "select status, rows_loaded from raw.load_batches where path = :p",
        p=str(path.resolve()),
    )
    assert failed == [{"status": "failed", "rows_loaded": 0}]


def test_rejects_survive_alongside_rows(raw_engine, write, uid):
    text = HEADER + "\n" + csv_rows(uid, 2) + "bad,row\n"
    [result] = load_paths(raw_engine, "api-events", [write("e.csv", text)])
    assert rejects(raw_engine, result.batch_id) == [(4, "wrong number of fields", "bad,row")]


def test_repeats_within_a_file_are_dropped_on_the_way(raw_engine, write, uid, caplog):
    """A retried delivery later in the same file: the first copy wins, no merge pass is needed."""
    rows_ = [
        {
            "event_id": f"{uid}-{i}",
            "occurred_at": f"2026-11-20T10:00:{i:02d}Z",
            "developer_id": f"{uid}_dev",
            "status_code": 200,
            "latency_ms": float(i),
        }
        for i in range(50)
    ]
    repeats = [{**rows_[3], "latency_ms": 999.0}, {**rows_[40], "latency_ms": 999.0}, rows_[3]]
    path = write("events.jsonl", rows_[:45] + repeats[:1] + rows_[45:] + repeats[1:])
    with caplog.at_level("INFO", logger="ingest.loader"):
        [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_duplicate, result.rows_rejected) == (50, 3, 0)
    assert [e["latency_ms"] for e in events(raw_engine, uid)] == [float(i) for i in range(50)]
    assert "staging table" not in caplog.text


@pytest.mark.parametrize("given_ids", [False, True], ids=["found", "given"])
def test_recent_ids_window(monkeypatch, given_ids):
    monkeypatch.setattr(loader.RecentIds, "WINDOW", 4)
    recent = loader.RecentIds(1)

    def chunk(*ids: str) -> tuple[str, list[str] | None]:
        return "".join(f"x\t{i}\ty\n" for i in ids), (list(ids) if given_ids else None)

    assert recent.filter(*chunk("a", "b")) == ("x\ta\ty\nx\tb\ty\n", 2)
    assert recent.filter(*chunk("c", "a", "c")) == ("x\tc\ty\n", 1)  # a from before, c twice
    assert recent.filter(*chunk("d", "e")) == ("x\td\ty\nx\te\ty\n", 2)
    # five ids were remembered, so the oldest chunk (a, b) left the window of four
    assert recent.filter(*chunk("a", "e")) == ("x\ta\ty\n", 1)
    assert recent.dropped == 3
    assert recent.seen == {"c", "d", "e", "a"} and recent.size == 4


def test_repeat_from_beyond_the_window_still_merges(raw_engine, write, uid, monkeypatch, caplog):
    monkeypatch.setattr(loader.RecentIds, "WINDOW", 2)
    monkeypatch.setattr(loader, "READ_CHUNK", 256)  # blocks of a few rows...
    monkeypatch.setattr(loader, "COPY_WRITE_CHARS", 100)  # ...each sent as its own chunk
    repeats = csv_rows(uid, 1, start=0) + csv_rows(uid, 1, start=19)  # 0 is far back by then
    text = HEADER + "\n" + csv_rows(uid, 20) + repeats
    with caplog.at_level("INFO", logger="ingest.loader"):
        [result] = load_paths(raw_engine, "api-events", [write("e.csv", text)])
    assert "staging table" in caplog.text
    assert (result.rows_loaded, result.rows_duplicate, result.rows_rejected) == (20, 2, 0)
    assert count(raw_engine, uid) == 20
