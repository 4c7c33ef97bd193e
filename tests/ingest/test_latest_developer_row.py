"""The developer row dbt staging keeps: the source's `updated_at`, not load order, decides, and
an opt-out is never undone by reloading an older export."""

from __future__ import annotations

import pytest

from ingest.loader import load_paths
from tests.ingest.conftest import rows

HEADER = "developer_id,email,marketing_opt_in,updated_at\n"


@pytest.fixture
def staged(raw_engine, tmp_path, monkeypatch):
    """Build stg_raw__developers (and its tests) and return the test's rows of it."""
    from onramp.dbt import run_dbt

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))

    def build(prefix: str) -> dict[str, dict]:
        run_dbt(["build", "--select", "stg_raw__developers"])
        found = rows(
            raw_engine,
            "select developer_id, email, marketing_opt_in from staging.stg_raw__developers"
            " where developer_id like :p",
            p=prefix + "%",
        )
        return {r["developer_id"].removeprefix(prefix): r for r in found}

    return build


def _export(write, name: str, *lines: str):
    """A developers export file with these rows."""
    return write(f"developers-{name}.csv", HEADER + "".join(line + "\n" for line in lines))


def test_source_timestamp_not_load_order_picks_the_row(raw_engine, write, uid, staged):
    newer = _export(
        write,
        "new",
        f"{uid}_a,a.new@example.com,false,2026-11-20T10:00:00Z",
        f"{uid}_b,b@example.com,false,",
    )
    # an older export, loaded after the newer one
    older = _export(
        write,
        "old",
        f"{uid}_a,a.old@example.com,true,2026-10-01T10:00:00Z",
        f"{uid}_b,b@example.com,true,",
    )
    results = load_paths(raw_engine, "developers", [newer, older])
    assert [r.rows_loaded for r in results] == [2, 2]
    stored = rows(
        raw_engine,
        "select updated_at from raw.developers where developer_id = :d order by batch_id",
        d=f"{uid}_a",
    )
    assert [str(r["updated_at"].date()) for r in stored] == ["2026-11-20", "2026-10-01"]
    got = staged(uid + "_")
    assert (got["a"]["email"], got["a"]["marketing_opt_in"]) == ("a.new@example.com", False)
    assert got["b"]["marketing_opt_in"] is False  # no timestamps: the opt-out still stands


def test_a_newer_opt_in_counts(raw_engine, write, uid, staged):
    changes = ((1, "false"), (2, "true"))  # opted out on the 1st, back in on the 2nd
    lines = (f"{uid}_c,c@example.com,{opt_in},2026-11-0{day}T10:00:00Z" for day, opt_in in changes)
    path = _export(write, "one", *lines)
    load_paths(raw_engine, "developers", [path])
    assert staged(uid + "_")["c"]["marketing_opt_in"] is True
