"""The landing-folder sensor: a run for new files, none for files already seen, a run again for a
file that changed; files mid-write wait for the next tick."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.ingest import landing_sensor
from orchestration.defs.ingest.landing import landing_files


def _age(path: Path, seconds: float = 120) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _tick(cursor: str | None):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor)
        return landing_sensor(context), context


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "landing"
    (root / "sample").mkdir(parents=True)
    monkeypatch.setenv("ONRAMP_LANDING_DIR", str(root))
    return root


def test_kinds_come_from_manifest_folder_or_name(landing: Path):
    (landing / "sample" / "manifest.json").write_text(
        json.dumps({"files": [
            {"path": "gw.log", "kind": "api_events", "format": "combined", "caller": "ip"},
            {"path": "people.csv", "kind": "developers", "format": "csv", "caller": None},
        ]})
    )  # fmt: skip
    for name in ("gw.log", "people.csv", "archetypes.csv"):
        (landing / "sample" / name).write_text("x\n")
    (landing / "incidents").mkdir()
    (landing / "incidents" / "today.jsonl").write_text("{}\n")
    (landing / "endpoints.csv").write_text("route\n")
    (landing / "notes.txt").write_text("ignored\n")
    (landing / "api_events.jsonl.part").write_text("still uploading\n")
    found = {(f.path.name, f.kind, f.format, f.caller) for f in landing_files(landing)}
    assert found == {
        ("people.csv", "developers", "csv", None),
        ("endpoints.csv", "endpoints", "auto", None),
        ("today.jsonl", "incidents", "auto", None),
        ("gw.log", "api_events", "combined", "ip"),
    }


def test_sensor_requests_a_load_of_new_files_only(landing: Path):
    events = landing / "api_events-1.jsonl"
    events.write_text('{"developer_id": "d1"}\n')
    _age(events)
    result, _ = _tick(None)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.asset_selection == [dg.AssetKey("raw_api_events")]
    assert request.run_config["ops"]["raw_api_events"]["config"]["paths"] == [str(events)]
    cursor = result.cursor

    again, _ = _tick(cursor)
    assert isinstance(again, dg.SkipReason) or not again.run_requests

    events.write_text('{"developer_id": "d1"}\n{"developer_id": "d2"}\n')  # appended: new size
    _age(events, 60)
    changed, _ = _tick(cursor)
    assert len(changed.run_requests) == 1
    assert changed.run_requests[0].run_key != request.run_key


def test_file_still_being_written_waits(landing: Path):
    (landing / "developers.csv").write_text("developer_id\n")  # mtime: now
    result, _ = _tick(None)
    assert isinstance(result, dg.SkipReason) or not result.run_requests


def test_files_a_manifest_lists_load_in_its_order(landing: Path):
    """The producer's big events file first, as `onramp load` does: loaded after a smaller file
    that overlaps it, it would go through the staging table and be parsed twice."""
    names = ["api_events.jsonl.gz", "api_events.csv", "moesif_events.json", "access.log"]
    (landing / "sample" / "manifest.json").write_text(
        json.dumps({"files": [
            *({"path": name, "kind": "api_events"} for name in names),
            {"path": "developers.csv", "kind": "developers"},
        ]})
    )  # fmt: skip
    for name in [*names, "developers.csv"]:
        (landing / "sample" / name).write_text("x\n")
    (landing / "api_events-extra.jsonl").write_text("{}\n")
    found = [f.path.name for f in landing_files(landing)]
    assert found == ["developers.csv", "api_events-extra.jsonl", *names]
