"""Odd input found on real files: nothing lost, nothing counted twice (one test per finding)."""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner

from cli.main import cli
from ingest import loader, sources
from ingest.loader import load_paths
from tests.ingest.conftest import events, rejects, rows


def _log_line(uid: str, second: int, path: str = "/v1/me") -> str:
    return (
        f'192.0.2.7 - {uid}_dev [20/Nov/2026:10:00:{second:02d} +0000] "GET {path} HTTP/1.1" '
        '200 12 "-" "curl/8"\n'
    )


def test_identical_access_log_lines_apart_are_distinct_calls(raw_engine, write, uid):
    # Real logs are not in time order: the same request twice in one second, another between.
    a = _log_line(uid, 1)
    b = _log_line(uid, 2, "/v1/other")
    first = write("access.log", a + b + a)
    [result] = load_paths(raw_engine, "api-events", [first])
    assert (result.rows_loaded, result.rows_rejected, result.rows_duplicate) == (3, 0, 0)
    assert len(events(raw_engine, uid)) == 3

    # The same file again, and a grown copy under another name, add only what is new.
    [again] = load_paths(raw_engine, "api-events", [first])
    assert again.skipped and again.rows_loaded == 0
    grown = write("access-grown.log", a + b + a + b + _log_line(uid, 3))
    [more] = load_paths(raw_engine, "api-events", [grown])
    assert more.rows_loaded == 2  # the second b (a distinct call) and the new line
    assert len(events(raw_engine, uid)) == 5


def _moesif_item(uid: str, i: int) -> dict:
    stamp = f"2026-11-20T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
    return {
        "request": {"time": stamp, "uri": f"https://api.example/v1/a/{i}", "verb": "GET"},
        "response": {"time": stamp, "status": 200, "body": {"items": [{"id": 1}, {"id": 2}]}},
        "user_id": f"{uid}_dev",
        "transaction_id": f"{uid}-{i}",
    }


def test_one_bad_element_in_a_minified_moesif_array_is_one_reject(raw_engine, write, uid):
    items = [json.dumps(_moesif_item(uid, i), separators=(",", ":")) for i in range(3000)]
    broken = items[100].replace('"verb":"GET"', '"verb":GET')  # not JSON
    items[100] = broken
    path = write("moesif.json", "[" + ",".join(items) + "]")  # no newline anywhere
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_rejected) == (2999, 1)
    assert rejects(raw_engine, result.batch_id) == [(1, "malformed JSON", broken)]
    assert len(events(raw_engine, uid)) == 2999


def test_a_truncated_element_in_a_minified_array_loses_only_itself(raw_engine, write, uid):
    items = [json.dumps(_moesif_item(uid, i), separators=(",", ":")) for i in range(500)]
    items[7] = items[7][:40]  # cut mid-string: the next element starts right after
    path = write("moesif.json", "[" + ",".join(items) + "]")
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_rejected) == (499, 1)
    [(_, reason, text)] = rejects(raw_engine, result.batch_id)
    assert (reason, text) == ("malformed JSON", items[7])


def test_a_broken_last_element_closes_the_array(raw_engine, write, uid):
    items = [json.dumps(_moesif_item(uid, i), separators=(",", ":")) for i in range(50)]
    items[-1] = items[-1].replace('"verb":"GET"', '"verb":GET')
    path = write("moesif.json", "[" + ",".join(items) + "]\n")
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_rejected) == (49, 1)
    assert rejects(raw_engine, result.batch_id) == [(1, "malformed JSON", items[-1])]


CSV_HEADER = "event_id,occurred_at,developer_id,status_code\n"


def _events_csv(uid: str, tag: str, n: int) -> str:
    rows = [f"{uid}-{tag}-{i},2026-11-20T10:00:0{i}Z,{uid}_dev,200\n" for i in range(n)]
    return CSV_HEADER + "".join(rows)


def _bad_files(write, uid):
    return [
        write("good.csv", _events_csv(uid, "a", 2)),
        write("empty.jsonl", ""),
        write("noise.dat", b"\x00\x01\x02 not a format anyone knows\n"),
        write("no-caller.csv", "event_id,occurred_at\nx,2026-11-20T10:00:00Z\n"),
        write("good2.csv", _events_csv(uid, "b", 3)),
    ]


def _batch(engine, path):
    [found] = rows(
        engine,
        "select status, error from raw.load_batches where path = :p",
        p=str(path.resolve()),
    )
    return found


def test_one_bad_file_is_a_failed_batch_and_the_others_load(raw_engine, write, uid):
    files = _bad_files(write, uid)
    results = load_paths(raw_engine, "api-events", files)
    assert [r.failed for r in results] == [False, True, True, True, False]
    assert [r.rows_loaded for r in results] == [2, 0, 0, 0, 3]
    assert len(events(raw_engine, uid)) == 5
    assert _batch(raw_engine, files[1]) == {"status": "failed", "error": f"{files[1]} is empty"}
    assert _batch(raw_engine, files[2])["error"].startswith(f"cannot tell the format of {files[2]}")
    assert _batch(raw_engine, files[3]) == {
        "status": "failed",
        "error": f"{files[3]}: no developer_id column in the CSV header",
    }


def test_cli_loads_the_good_files_then_names_the_bad_ones(raw_engine, write, uid):
    files = _bad_files(write, uid)
    result = CliRunner().invoke(cli, ["load", "api-events", *map(str, files)])
    assert result.exit_code == 1
    assert len(events(raw_engine, uid)) == 5
    table = result.stdout.splitlines()
    assert table[3].split()[0] == str(files[1]) and table[3].split()[-1] == "failed"
    [line] = result.stderr.splitlines()
    assert line.startswith("error: 3 of 5 files could not be loaded")
    assert f"{files[1]}: {files[1]} is empty" in line


def test_landing_run_loads_the_good_files_next_to_a_bad_one(raw_engine, tmp_path, monkeypatch, uid):
    import dagster as dg

    from orchestration.defs.ingest import RAW_ASSETS, raw_asset_key
    from orchestration.lib.resources import RESOURCE_KEY, OnrampResource

    landing = tmp_path / "landing"
    (landing / "api_events").mkdir(parents=True)
    (landing / "api_events" / "good.csv").write_text(_events_csv(uid, "a", 2))
    (landing / "api_events" / "empty.jsonl").write_text("")
    monkeypatch.setenv("ONRAMP_LANDING_DIR", str(landing))
    [asset] = [a for a in RAW_ASSETS if raw_asset_key("api_events") in a.keys]
    result = dg.materialize(
        [asset], resources={RESOURCE_KEY: OnrampResource()}, partition_key="2026-11-26"
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert (metadata["files"].value, metadata["files_failed"].value) == (2, 1)
    assert len(events(raw_engine, uid)) == 2


def _fresh(path):
    """The file was written just now: it may still be being written."""
    os.utime(path, None)
    return path


def _age(path):
    landed = time.time() - 60
    os.utime(path, (landed, landed))


def test_a_cut_last_line_waits_until_the_file_is_complete(raw_engine, write, uid):
    # No event_id: a cut line would be stored as another (wrong) call and counted again later.
    head = "occurred_at,developer_id,status_code,path\n"
    lines = [f"2026-11-20T10:00:0{i}Z,{uid}_dev,200,/v1/users/{i}\n" for i in range(3)]
    cut = lines[2][:-8]  # mid-path, no line end: the writer is not done yet
    path = _fresh(write("events.csv", head + lines[0] + lines[1] + cut))
    [first] = load_paths(raw_engine, "api-events", [path])
    assert (first.rows_loaded, first.rows_rejected) == (2, 0)
    assert first.notes and "held back until the file is complete" in first.notes[0]
    assert rows(raw_engine, "select status from raw.load_batches where batch_id = :b",
                b=first.batch_id) == [{"status": "partial"}]  # fmt: skip

    # The same bytes once the file has settled: the last line is complete after all.
    _age(path)
    [settled] = load_paths(raw_engine, "api-events", [path])
    assert (settled.rows_loaded, settled.rows_rejected, settled.notes) == (1, 0, ())
    assert [e["path"] for e in events(raw_engine, uid)] == ["/v1/users/0", "/v1/users/1", "/v1/"]

    # The writer finishes the line: only the completed call is new.
    with open(path, "a") as fh:
        fh.write(lines[2][len(cut) :])
    [done] = load_paths(raw_engine, "api-events", [_fresh(path)])
    assert (done.rows_loaded, done.rows_rejected, done.notes) == (1, 0, ())


def test_cli_holds_back_a_cut_line_too(raw_engine, write, uid):
    text = _events_csv(uid, "c", 3)
    path = _fresh(write("events.csv", text[:-10]))
    result = CliRunner().invoke(cli, ["load", "api-events", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].split()[:5] == [str(path), "csv", "2", "0", "0"]
    assert "held back until the file is complete" in result.stderr
    path.write_text(text)
    again = CliRunner().invoke(cli, ["load", "api-events", str(_fresh(path))])
    assert again.stdout.splitlines()[2].split()[:5] == [str(path), "csv", "1", "2", "0"]


def test_a_moesif_array_being_written_loads_its_complete_elements(raw_engine, write, uid):
    items = [json.dumps(_moesif_item(uid, i)) for i in range(5)]
    text = "[" + ",".join(items) + "]"
    path = _fresh(write("moesif.json", text[: len(text) - len(items[-1]) // 2]))
    [first] = load_paths(raw_engine, "api-events", [path])
    assert (first.rows_loaded, first.rows_rejected) == (4, 0) and first.notes
    path.write_text(text)
    [done] = load_paths(raw_engine, "api-events", [_fresh(path)])
    assert (done.rows_loaded, done.rows_rejected, done.notes) == (1, 0, ())


def test_gzip_output_is_capped_with_a_clear_line(raw_engine, write, uid, monkeypatch):
    monkeypatch.setattr(sources, "GZIP_MIN_LIMIT", 100_000)
    monkeypatch.setattr(sources, "MAX_GZIP_RATIO", 10)
    text = _events_csv(uid, "g", 0) + "".join(
        f"{uid}-g-{i},2026-11-20T10:00:00Z,{uid}_dev,200\n" for i in range(20_000)
    )
    path = write("events.csv.gz", text, gz=True)
    assert len(text) > 10 * path.stat().st_size + 100_000  # compresses far better than logs
    [result] = load_paths(raw_engine, "api-events", [path])
    assert 0 < result.rows_loaded < 20_000
    assert rejects(raw_engine, result.batch_id)[-1][1] == "gzip over size limit"
    limit = max(100_000, 10 * path.stat().st_size)
    assert f"gzip output passed {limit:,} bytes: the rest of the file is not read" in result.notes


def test_rejects_and_their_text_are_capped_per_file(raw_engine, write, uid, monkeypatch):
    monkeypatch.setattr(loader, "MAX_STORED_REJECTS", 5)
    monkeypatch.setattr(loader, "MAX_REJECT_TEXT_TOTAL", 50)
    monkeypatch.setattr(loader, "REJECT_PREVIEW", 10)
    bad = [f"garbage line number {i:02d} of thirty\n" for i in range(20)]
    path = write("events.csv", _events_csv(uid, "r", 1) + "".join(bad))
    [result] = load_paths(raw_engine, "api-events", [path])
    assert (result.rows_loaded, result.rows_rejected) == (1, 20)  # every reject is counted
    stored = [text for _, _, text in rejects(raw_engine, result.batch_id)]
    assert stored == [line.rstrip("\n") for line in bad[:2]] + [b[:10] for b in bad[2:5]]
    assert result.notes == (
        "20 rejects: only the first 5 are stored in raw.load_rejects (all are counted)",
        "reject text passed 50 characters: later rejects keep only their first 10 characters",
    )


def test_landing_paths_stay_inside_the_landing_folder(tmp_path):
    from orchestration.defs.ingest.landing import landing_files

    secret = tmp_path / "outside" / "developers.csv"
    secret.parent.mkdir()
    secret.write_text("developer_id,email\nx,someone@example.com\n")
    root = tmp_path / "landing"
    (root / "sample").mkdir(parents=True)
    (root / "sample" / "manifest.json").write_text(
        json.dumps({"files": [{"path": "../../outside/developers.csv", "kind": "developers"}]})
    )
    (root / "developers-linked.csv").symlink_to(secret)
    (root / "developers-real.csv").write_text("developer_id\nd1\n")
    found = [f.path for f in landing_files(root)]
    assert found == [(root / "developers-real.csv").resolve()]


def test_a_manifest_cannot_name_a_file_outside_its_folder(raw_engine, tmp_path):
    from ingest.loader import LoadError, load_manifest_dir

    (tmp_path / "outside.csv").write_text("developer_id\nd1\n")
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "manifest.json").write_text(
        json.dumps({"files": [{"path": "../outside.csv", "kind": "developers"}]})
    )
    with pytest.raises(LoadError, match="which is outside its folder"):
        load_manifest_dir(raw_engine, folder)
