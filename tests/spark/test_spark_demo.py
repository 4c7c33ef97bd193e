"""`onramp demo` with ONRAMP_WAREHOUSE=spark: the same Dagster definitions load the raw files with
Spark's readers, build every dbt model on Spark, and sync from the Spark-built segments; the
emails are those the PostgreSQL demo writes for the same sample.

Each demo runs in its own process and ONRAMP_HOME (Spark's Derby metastore takes one process).
"""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = ["--developers", "30", "--days", "14", "--as-of", "2026-11-26"]


def _demo(home: Path, warehouse: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONRAMP_", "DAGSTER_", "DBT_"))}
    env.update({"ONRAMP_HOME": str(home), "ONRAMP_WAREHOUSE": warehouse})
    return subprocess.run(
        [str(Path(sys.executable).parent / "onramp"), "demo", *SAMPLE],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[2],
    )


def _stop_embedded_postgres(home: Path) -> None:
    """`onramp demo` leaves its embedded PostgreSQL running for the next command: stop it."""
    import pgserver

    data = home / "postgres"
    if (data / "postmaster.pid").exists():
        pgserver.get_server(data, cleanup_mode="stop").cleanup()


def _sent(outbox: Path) -> list[tuple[str, str]]:
    found = []
    for path in outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.append((str(msg["To"]), str(msg["Subject"])))
    return sorted(found)


def test_demo_on_spark_writes_the_emails_of_the_postgres_demo(tmp_path: Path) -> None:
    from onramp.spark import java_problem

    problem = java_problem()
    if problem:
        pytest.skip(problem)

    try:
        on_postgres = _demo(tmp_path / "postgres", "postgres")
        on_spark = _demo(tmp_path / "spark", "spark")
    finally:
        for home in ("postgres", "spark"):
            _stop_embedded_postgres(tmp_path / home)
    assert on_postgres.returncode == 0, on_postgres.stdout[-2000:] + on_postgres.stderr[-2000:]
    assert on_spark.returncode == 0, on_spark.stdout[-2000:] + on_spark.stderr[-2000:]

    for line in ("raw_api_events: done", "dbt_models: done", "segment_syncs: done"):
        assert line in on_spark.stderr  # the progress lines
    assert (tmp_path / "spark" / "spark" / "warehouse").is_dir()  # built on Spark, not PostgreSQL
    sent = _sent(tmp_path / "postgres" / "outbox")
    assert len(sent) > 10
    assert _sent(tmp_path / "spark" / "outbox") == sent
    assert on_spark.stdout.splitlines()[-1].startswith(f"{len(sent)} emails written to the outbox")
