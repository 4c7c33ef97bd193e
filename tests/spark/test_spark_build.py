"""The same dbt project on Spark: its tests pass, and segments and funnel tables equal
PostgreSQL's for the same raw rows and the same as-of day."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.spark.conftest import SparkBuilt

# every seg_ model of the project (the reference evaluator covers only some of them)
SEGMENTS = sorted(
    path.stem.removeprefix("seg_")
    for path in (Path(__file__).resolve().parents[2] / "dbt_project/models/segments").glob(
        "seg_*.sql"
    )
)


def _normal(value: Any) -> Any:
    """One representation per value on both engines: instants in UTC, numbers as floats."""
    if isinstance(value, datetime):
        # PostgreSQL gives aware datetimes; pyspark gives naive ones in the process's zone
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, bool) or value is None or isinstance(value, str | date):
        return value
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return None if math.isnan(number) else number
    return value


def _sorted(rows: Any) -> list[tuple]:
    """Rows in one order on both engines: by their values, floats to 3 places (the comparison
    itself allows the digits two engines' decimal and float arithmetic may differ by)."""
    normal = [tuple(_normal(v) for v in row) for row in rows]
    return sorted(
        normal, key=lambda row: repr([round(v, 3) if isinstance(v, float) else v for v in row])
    )


def _pg_rows(engine: sa.Engine, table: str, columns: list[str]) -> list[tuple]:
    with engine.connect() as conn:
        return _sorted(conn.execute(sa.text(f"select {', '.join(columns)} from {table}")).all())


def _spark_rows(spark: Any, table: str, columns: list[str]) -> list[tuple]:
    return _sorted(spark.table(table).select(*columns).collect())


def _same(a: Any, b: Any) -> bool:
    """Equal; numbers to 6 decimal places: Spark's decimal division keeps 6 (a median of
    `seconds / 3600.0` is 211.047222 there, 211.0472222... on PostgreSQL)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def _assert_same_rows(spark_rows: list[tuple], pg_rows: list[tuple], table: str) -> None:
    assert len(spark_rows) == len(pg_rows), f"{table}: {len(spark_rows)} rows on Spark"
    for got, want in zip(spark_rows, pg_rows, strict=True):
        assert len(got) == len(want) and all(map(_same, got, want)), (table, got, want)


def _columns(engine: sa.Engine, table: str) -> list[str]:
    schema, name = table.split(".")
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "select column_name from information_schema.columns"
                    " where table_schema = :s and table_name = :t order by ordinal_position"
                ),
                {"s": schema, "t": name},
            ).scalars()
        )


def test_dbt_models_and_tests_pass_on_spark(spark_built: SparkBuilt) -> None:
    full, incremental = spark_built.runs
    assert full.success and full.models_failed == 0, full.failures
    assert incremental.success, incremental.failures
    assert incremental.tests_failed == 0 and incremental.tests_passed > 50, incremental.summary()
    assert incremental.models_built == full.models_built


@pytest.mark.parametrize("segment", SEGMENTS)
def test_every_segment_has_the_same_members_on_both_engines(
    spark_built: SparkBuilt, engine: sa.Engine, segment: str
) -> None:
    table = f"segments.seg_{segment}"
    columns = _columns(engine, table)
    assert [f.name for f in spark_built.spark.table(table).schema.fields] == columns
    _assert_same_rows(
        _spark_rows(spark_built.spark, table, columns), _pg_rows(engine, table, columns), table
    )


def test_most_segments_have_members(spark_built: SparkBuilt) -> None:
    """The comparison above proves little on empty tables: the sample data fills most segments
    (the milestone segments hold only the developers who reached it on the as-of day)."""
    empty = [s for s in SEGMENTS if spark_built.spark.table(f"segments.seg_{s}").count() == 0]
    assert len(empty) <= 3, empty


@pytest.mark.parametrize(
    "table",
    [
        # what the funnel dashboard reads (models/_exposures.yml)
        "marts.fct_signup_cohorts_weekly",
        "marts.fct_stage_counts_daily",
        "marts.fct_stage_transitions_daily",
        # and the facts under it, incremental on both engines
        "marts.fct_developer_stage_daily",
        "marts.fct_developer_daily_usage",
        "marts.dim_developers",
    ],
)
def test_funnel_tables_have_the_same_rows_on_both_engines(
    spark_built: SparkBuilt, engine: sa.Engine, table: str
) -> None:
    columns = _columns(engine, table)
    assert sorted(f.name for f in spark_built.spark.table(table).schema.fields) == sorted(columns)
    pg = _pg_rows(engine, table, columns)
    assert pg, f"{table} is empty on PostgreSQL"
    _assert_same_rows(_spark_rows(spark_built.spark, table, columns), pg, table)


def _view_messages(run: Any) -> dict[str, str]:
    """Each view model of a dbt invocation with its result message."""
    return {
        r.node.name: r.message
        for r in run.results.results
        if r.node.resource_type == "model"
        and r.node.config.materialized == "view_replaced_when_changed"
    }


def test_the_incremental_build_leaves_unchanged_views_in_place(spark_built: SparkBuilt) -> None:
    """The views the full refresh created have the same text and columns on the next day: the
    build checks them (macros/spark_view.sql) instead of replacing them."""
    views = _view_messages(spark_built.runs[1])
    assert views, "no view model in the build"
    assert set(views.values()) == {"OK (view unchanged)"}, views


def test_a_view_that_differs_is_replaced(spark_built: SparkBuilt) -> None:
    """A view whose stored text is not the model's (an edited model, or anything else left
    there) is replaced as dbt-spark replaces it, and then reads the model's rows."""
    from onramp.dbt import run_dbt

    spark = spark_built.spark
    stale = "select * from raw.endpoints where false"
    spark.sql(f"create or replace view staging.stg_raw__endpoints as {stale}")
    assert spark.table("staging.stg_raw__endpoints").count() == 0
    run = run_dbt(
        ["run", "--select", "stg_raw__endpoints"],
        as_of=spark_built.as_of,
        settings=spark_built.settings,
    )
    assert _view_messages(run)["stg_raw__endpoints"] != "OK (view unchanged)"
    assert (
        spark.table("staging.stg_raw__endpoints").count()
        == spark.table("raw.endpoints").count()
        > 0
    )
