"""One dbt build per session on generated sample data, shared by every test in tests/dbt/.

The session: generate sample data (fixed as-of date), load it but hold back a few events of
the day before the as-of day, build everything as of that day (full refresh), load the held-back
events (late events), run the models again as of the as-of day (incremental: the as-of day's
events are the "new" ones) and keep a copy of the incremental tables, then a full-refresh build
(models + tests, through `onramp build`) as of the as-of day that the tests read.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

AS_OF = date(2026, 11, 26)
INCREMENTAL_MODELS = {
    "fct_developer_daily_usage": ("marts", "usage_date"),
    "fct_developer_stage_daily": ("marts", "stage_date"),
    "int_api_events_aggregated_to_route_days": ("intermediate", "usage_date"),
}
# models compared with their full refresh, not version-checked (no developer x day grain)
INCREMENTAL_AGGREGATES = {
    "fct_stage_counts_daily": "marts",
    "fct_stage_transitions_daily": "marts",
    "int_request_paths_normalized": "intermediate",
    # developer x route: kept settled days merged with the newly settled ones, plus recent days
    "int_route_adoption_settled": "intermediate",
    "fct_route_adoption": "marts",
    # developer x month over settled days, and the per-developer totals on top of it
    "int_developer_usage_settled": "intermediate",
    "int_developers_usage_summarized": "intermediate",
}


@dataclass
class Built:
    sample_dir: Path
    as_of: date
    manifest: dict
    build_output: str
    build_exit_code: int
    first_rebuilt_day: date
    changed_days: dict[str, set[date]]


def _row_versions(conn: sa.Connection) -> dict[str, set]:
    """(developer, day, xmin) of every row: a row the run rewrote gets a new xmin."""
    out = {}
    for model, (schema, day_col) in INCREMENTAL_MODELS.items():
        rows = conn.execute(
            sa.text(f"select developer_id, {day_col}, xmin::text from {schema}.{model}")
        )
        out[model] = {tuple(r) for r in rows}
    return out


@pytest.fixture(scope="session")
def built(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Built:
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

    lookback = 0  # dbt_project.yml var incremental_lookback_days
    # a few events of the day before the as-of day arrive late: held back from the first build,
    # loaded before the incremental run, which must then rebuild that day too
    late_day = AS_OF - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists public.dbt_test_late_events"))
        conn.execute(
            sa.text(
                "create table public.dbt_test_late_events as select * from raw.api_events"
                " where occurred_at >= :day and occurred_at < :next order by event_id limit 5"
            ),
            {"day": f"{late_day}T00:00:00+00:00", "next": f"{AS_OF}T00:00:00+00:00"},
        )
        late = conn.execute(sa.text("select count(*) from public.dbt_test_late_events"))
        assert late.scalar_one() == 5
        conn.execute(
            sa.text(
                "delete from raw.api_events"
                " where event_id in (select event_id from public.dbt_test_late_events)"
            )
        )
    run_dbt(["run", "--full-refresh"], as_of=late_day)
    with engine.begin() as conn:
        before = _row_versions(conn)
        conn.execute(
            sa.text("insert into raw.api_events select * from public.dbt_test_late_events")
        )
        conn.execute(sa.text("drop table public.dbt_test_late_events"))
    run_dbt(["run", "--select", *INCREMENTAL_MODELS, *INCREMENTAL_AGGREGATES], as_of=AS_OF)
    with engine.begin() as conn:
        after = _row_versions(conn)
        conn.execute(sa.text("drop schema if exists incremental_copy cascade"))
        conn.execute(sa.text("create schema incremental_copy"))
        copies = {m: s for m, (s, _) in INCREMENTAL_MODELS.items()} | INCREMENTAL_AGGREGATES
        for model, schema in copies.items():
            conn.execute(
                sa.text(f"create table incremental_copy.{model} as select * from {schema}.{model}")
            )
    changed = {model: {row[1] for row in before[model] ^ after[model]} for model in before}

    result = CliRunner().invoke(build, ["--as-of", AS_OF.isoformat(), "--full-refresh"])
    manifest_file = Path(os.environ["DBT_TARGET_PATH"]) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    return Built(
        sample_dir=sample_dir,
        as_of=AS_OF,
        manifest=manifest,
        build_output=result.output + (repr(result.exception) if result.exception else ""),
        build_exit_code=result.exit_code,
        first_rebuilt_day=AS_OF - timedelta(days=1 + lookback),
        changed_days=changed,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
