"""`onramp load`: the summary a user reads, and one clear line on bad input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

REPO = Path(__file__).resolve().parents[2]
HEADER = "event_id,occurred_at,developer_id,status_code"


def events_csv(uid: str, n: int, bad: int = 0) -> str:
    good = [f"{uid}-{i},2026-11-20T10:00:00.{i:06d}Z,{uid}_dev,200" for i in range(n)]
    return "\n".join([HEADER, *good, *["oops"] * bad]) + "\n"


def test_summary_table(raw_engine, write, uid):
    a = write("a.csv", events_csv(uid, 3, bad=1))
    b = write("b.csv", events_csv(uid, 5))
    result = CliRunner().invoke(cli, ["load", "api-events", str(a), str(b)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "format", "loaded", "duplicates", "rejects", "seconds"]
    assert lines[2].split()[:5] == [str(a), "csv", "3", "0", "1"]
    assert lines[3].split()[:5] == [str(b), "csv", "2", "3", "0"]  # 3 rows already loaded
    assert lines[4].split()[:4] == ["total", "5", "3", "1"]
    again = CliRunner().invoke(cli, ["load", "api-events", str(a)])
    assert again.stdout.splitlines()[2].endswith("skipped: loaded before")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["api-events", "nope.csv"], "error: no such file: nope.csv"),
        (
            ["api-events", "x.csv", "--format", "xml"],
            "error: unknown format 'xml': use auto, jsonl, csv, moesif, combined",
        ),
        (
            ["developers", "x.csv", "--format", "moesif"],
            "error: format 'moesif' does not apply to developers: use auto, jsonl, csv",
        ),
        (
            ["api-events", "x.csv", "--caller", "cookie"],
            "error: unknown --caller 'cookie': use remote-user, ip, query:PARAM or header:NAME",
        ),
        (
            ["comets", "x.csv"],
            "error: unknown kind 'comets': use api-events, developers, incidents or endpoints",
        ),
        (["api-events"], "error: give at least one PATH to load"),
        (["api-events", "."], "error: not a file: ."),
    ],
)
def test_bad_input_is_one_line(raw_engine, write, tmp_path, monkeypatch, args, line):
    monkeypatch.chdir(tmp_path)
    write("x.csv", "developer_id,occurred_at\n")
    result = CliRunner().invoke(cli, ["load", *args])
    assert result.exit_code == 1
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_installed_command_with_progress(raw_engine, write, uid, pg_url):
    """The real `onramp` entry point on a file big enough for the progress bar."""
    path = write("big.csv", events_csv(uid, 30_000))
    assert path.stat().st_size > 1 << 20
    onramp = Path(sys.executable).with_name("onramp")
    done = subprocess.run(
        [str(onramp), "load", "api-events", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "ONRAMP_DATABASE_URL": pg_url},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "loading api-events" in done.stderr
    assert done.stdout.splitlines()[2].split()[:5] == [str(path), "csv", "30,000", "0", "0"]


CALLERS_LINE = re.compile(
    r"([0-9,]+) API callers? (?:has|have) no developer record: "
    r"load your user export with `onramp load developers FILE`"
)


def test_load_names_the_callers_without_a_developer_record(raw_engine, write, uid):
    """Events from a caller nobody told us about: one line says how many such callers there are
    and what to load; loading the caller's developer record takes it out of the count."""
    events = write("events.csv", events_csv(uid, 2))
    loaded = CliRunner().invoke(cli, ["load", "api-events", str(events)])
    assert loaded.exit_code == 0, loaded.output
    found = CALLERS_LINE.fullmatch(loaded.stdout.splitlines()[-1])
    assert found, loaded.stdout
    before = int(found.group(1).replace(",", ""))
    assert before >= 1

    developers = write("developers.csv", f"developer_id,email\n{uid}_dev,{uid}@example.com\n")
    recorded = CliRunner().invoke(cli, ["load", "developers", str(developers)])
    assert recorded.exit_code == 0, recorded.output
    after = CALLERS_LINE.fullmatch(recorded.stdout.splitlines()[-1])
    assert (int(after.group(1).replace(",", "")) if after else 0) == before - 1
