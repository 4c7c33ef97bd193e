"""One dbt build per session on generated sample data, shared by every test in tests/dbt/.

The session plays three daily partitions, as Dagster runs them, with late events:

1. generate sample data (fixed as-of date) and load it, holding back a few events of each of
   the two days before the as-of day;
2. build every model as of AS_OF - 2 (full refresh: the first partition);
3. load the held-back events of AS_OF - 2, run as of AS_OF - 1 (incremental);
4. load the held-back events of AS_OF - 1, run as of AS_OF (incremental), and keep a copy of every
   table it left;
5. a full-refresh build (models + tests, through `onramp build`) as of AS_OF, which the tests read
   and compare with the copy: an incremental run must equal a full refresh.

Every incremental run records which days of each day-grained model it rewrote (row xmin), so the
tests can check it rebuilt only the as-of day and the lookback days, including the late day. The
runs look back 3 days, so one of them starts on a Sunday and rebuilds the complete week it ends.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

AS_OF = date(2026, 11, 26)
# var incremental_lookback_days of the incremental runs (default 1): 3, so that the run as of
# Wednesday AS_OF - 1 rebuilds from Sunday and int_route_days_aggregated_to_weeks rebuilds the week
# that Sunday ends, while the run as of Thursday AS_OF (from Monday) writes no week
LOOKBACK_DAYS = 3
# day-grained incremental models: schema and day column (dbt delete+insert on that day)
INCREMENTAL_MODELS = {
    "fct_developer_daily_usage": ("marts", "usage_date"),
    "fct_developer_stage_daily": ("marts", "stage_date"),
    "int_api_events_aggregated_to_route_days": ("intermediate", "usage_date"),
    "fct_stage_counts_daily": ("marts", "stage_date"),
    "fct_stage_transitions_daily": ("marts", "stage_date"),
}
# incremental by week: schema and week column
WEEKLY_MODELS = {"int_route_days_aggregated_to_weeks": ("intermediate", "week_start")}
# rebuilt only when the as-of week is new or the lookback reaches a complete week
WEEK_TOTALS_MODELS = {"int_route_weeks_aggregated_to_routes": ("intermediate", "built_for_week")}
# every table the runs leave is compared with its full refresh, incremental or not
COMPARED_SCHEMAS = ("intermediate", "marts", "segments")
LATE_EVENTS_PER_DAY = 5
# an API caller with events and no developer record (the sample data has a record for everyone):
# a failed call on its first day, its first successful call two days later, one more call later
CALLER_WITHOUT_RECORD = "caller-without-record"
CALLER_EVENTS = (
    (6, 404),  # days before AS_OF, status
    (4, 200),
    (1, 200),
)


@dataclass
class Built:
    sample_dir: Path
    as_of: date
    manifest: dict
    build_output: str
    build_exit_code: int
    # per incremental run (its as-of day): model -> days whose rows it rewrote
    changed_days: dict[date, dict[str, set[date]]] = field(default_factory=dict)
    # per incremental run: the day whose late events were loaded just before it
    late_days: dict[date, date] = field(default_factory=dict)
    compared_tables: list[str] = field(default_factory=list)


def _row_versions(conn: sa.Connection) -> dict[str, set]:
    """(day or week, xmin) of every row of the incremental models: a rewritten row gets a new
    xmin."""
    out = {}
    for model, (schema, day_col) in (
        INCREMENTAL_MODELS | WEEKLY_MODELS | WEEK_TOTALS_MODELS
    ).items():
        rows = conn.execute(sa.text(f"select {day_col}, xmin::text from {schema}.{model}"))
        out[model] = {tuple(r) for r in rows}
    return out


def _hold_back(conn: sa.Connection, day: date) -> None:
    """Move a few events of `day` from raw.api_events to a side table (they arrive late)."""
    table = f"public.dbt_test_late_{day:%Y%m%d}"
    conn.execute(sa.text(f"drop table if exists {table}"))
    conn.execute(
        sa.text(
            f"create table {table} as select * from raw.api_events"
            " where occurred_at >= :day and occurred_at < :next order by event_id limit :n"
        ),
        {
            "day": f"{day}T00:00:00+00:00",
            "next": f"{day + timedelta(days=1)}T00:00:00+00:00",
            "n": LATE_EVENTS_PER_DAY,
        },
    )
    assert conn.execute(sa.text(f"select count(*) from {table}")).scalar_one() == (
        LATE_EVENTS_PER_DAY
    )
    conn.execute(
        sa.text(f"delete from raw.api_events where event_id in (select event_id from {table})")
    )


def _land(conn: sa.Connection, day: date) -> None:
    """Load the held-back events of `day`."""
    table = f"public.dbt_test_late_{day:%Y%m%d}"
    conn.execute(sa.text(f"insert into raw.api_events select * from {table}"))
    conn.execute(sa.text(f"drop table {table}"))


def _add_caller_without_record(engine: sa.Engine) -> None:
    """Events of CALLER_WITHOUT_RECORD, as if a log had been loaded before the user export."""
    with engine.begin() as conn:
        batch = conn.execute(sa.text("select max(batch_id) from raw.api_events")).scalar_one()
        for n, (days_before, status) in enumerate(CALLER_EVENTS):
            conn.execute(
                sa.text(
                    "insert into raw.api_events (event_id, occurred_at, developer_id, method,"
                    " path, status_code, latency_ms, environment, batch_id)"
                    " values (:id, :at, :dev, 'GET', '/v1/status', :status, 12, 'sandbox', :batch)"
                ),
                {
                    "id": f"{CALLER_WITHOUT_RECORD}-{n}",
                    "at": f"{AS_OF - timedelta(days=days_before)}T10:00:00+00:00",
                    "dev": CALLER_WITHOUT_RECORD,
                    "status": status,
                    "batch": batch,
                },
            )


# tests/spark imports `built` into its own conftest, which makes it a second fixture of the same
# session: the build runs once and both return it.
_BUILT: list[Built] = []


@pytest.fixture(scope="session")
def built(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Built:
    if not _BUILT:
        _BUILT.append(_build(engine, tmp_path_factory))
    return _BUILT[0]


def _build(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Built:
    import os

    from click.testing import CliRunner

    from ingest.loader import load_manifest_dir
    from ingest.schema import ensure_raw_schema
    from onramp.dbt import build, run_dbt
    from sample_data import generate

    # this session's dbt artifacts and logs stay out of the repo's target/ (others use it)
    work = tmp_path_factory.mktemp("dbt")
    os.environ["DBT_TARGET_PATH"] = str(work / "target")
    os.environ["DBT_LOG_PATH"] = str(work / "logs")

    sample_dir = tmp_path_factory.mktemp("sample")
    generate(sample_dir, developers=60, days=35, seed=7, as_of=AS_OF)
    ensure_raw_schema(engine)
    load_manifest_dir(engine, sample_dir)
    _add_caller_without_record(engine)

    first, *incremental_days = [AS_OF - timedelta(days=n) for n in (2, 1, 0)]
    with engine.begin() as conn:
        for day in (first, *incremental_days[:-1]):
            _hold_back(conn, day)
    run_dbt(["run", "--full-refresh"], as_of=first)

    result = Built(
        sample_dir=sample_dir, as_of=AS_OF, manifest={}, build_output="", build_exit_code=-1
    )
    for as_of in incremental_days:
        late_day = as_of - timedelta(days=1)
        with engine.begin() as conn:
            before = _row_versions(conn)
            _land(conn, late_day)
        run_dbt(
            ["run", "--vars", json.dumps({"incremental_lookback_days": LOOKBACK_DAYS})], as_of=as_of
        )
        with engine.connect() as conn:
            after = _row_versions(conn)
        result.changed_days[as_of] = {
            model: {row[0] for row in before[model] ^ after[model]} for model in before
        }
        result.late_days[as_of] = late_day

    with engine.begin() as conn:
        conn.execute(sa.text("drop schema if exists incremental_copy cascade"))
        conn.execute(sa.text("create schema incremental_copy"))
        tables = conn.execute(
            sa.text(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema in :schemas and table_type = 'BASE TABLE'"
            ).bindparams(sa.bindparam("schemas", expanding=True)),
            {"schemas": list(COMPARED_SCHEMAS)},
        ).all()
        for schema, table in tables:
            conn.execute(
                sa.text(f"create table incremental_copy.{table} as select * from {schema}.{table}")
            )
            result.compared_tables.append(f"{schema}.{table}")

    run = CliRunner().invoke(build, ["--as-of", AS_OF.isoformat(), "--full-refresh"])
    manifest_file = Path(os.environ["DBT_TARGET_PATH"]) / "manifest.json"
    result.manifest = json.loads(manifest_file.read_text())
    result.build_output = run.output + (repr(run.exception) if run.exception else "")
    result.build_exit_code = run.exit_code
    return result


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
