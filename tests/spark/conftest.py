"""The dbt project built on Spark (dbt-spark's session method, local pyspark) from the very raw
rows the PostgreSQL suite built from, so the tests can compare the two engines table by table.

One Spark session per test session and two dbt invocations on Spark:

1. the PostgreSQL session of tests/dbt (`built`: sample data loaded, incremental runs, a full
   refresh as of AS_OF) is reused, and its models are run once more as of AS_OF (a few seconds),
   so tests of other folders that ran in between cannot leave PostgreSQL's tables at another
   as-of day than the raw rows Spark gets;
2. its raw tables are copied into Spark's raw tables (rows read from PostgreSQL in batches,
   `spark.createDataFrame` with the Spark table's schema; event_date added as the loader does);
3. `dbt run --full-refresh` on Spark as of AS_OF - 1, then `dbt build` as of AS_OF: an incremental
   run (insert_overwrite of the last days' partitions) plus every data test. The tests compare
   what it left with PostgreSQL's full refresh as of AS_OF, so an incremental Spark build that
   drifted from a full one shows up as a difference too.

Without Java the whole folder skips with one line (onramp.spark.java_problem()).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.dbt.conftest import AS_OF, Built, built  # noqa: F401 - the PostgreSQL build, reused

RAW_TABLES = ("developers", "incidents", "endpoints", "api_events")
BATCH_ROWS = 20_000


@dataclass
class SparkBuilt:
    spark: Any
    settings: Any
    as_of: date
    pg: Built
    runs: list[Any] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def spark_settings() -> Any:
    """The session's settings with the Spark warehouse (PostgreSQL stays the suite's default)."""
    from onramp.settings import Settings

    return dataclasses.replace(Settings.from_env(), warehouse="spark")


def _spark_value(value: Any) -> Any:
    # jsonb comes back as dict/list; Spark keeps extras as JSON text
    return json.dumps(value) if isinstance(value, dict | list) else value


def copy_raw_to_spark(engine: sa.Engine, spark: Any) -> dict[str, int]:
    """Every row of the PostgreSQL raw tables into the (emptied) Spark raw tables, in batches."""
    counts = {}
    for table in RAW_TABLES:
        target = spark.table(f"raw.{table}")
        schema = target.schema
        names = [f.name for f in schema.fields]
        spark.sql(f"truncate table raw.{table}")
        select = ", ".join(
            "cast(timezone('UTC', occurred_at) as date) as event_date" if n == "event_date" else n
            for n in names
        )
        counts[table] = 0
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                sa.text(f"select {select} from raw.{table}")
            )
            while rows := result.fetchmany(BATCH_ROWS):
                data = [tuple(_spark_value(v) for v in row) for row in rows]
                spark.createDataFrame(data, schema=schema).write.insertInto(f"raw.{table}")
                counts[table] += len(data)
    return counts


@pytest.fixture(scope="session")
def spark(onramp_home: Any) -> Any:
    """The one SparkSession of the test session (skips the folder when Java is missing)."""
    from onramp.spark import java_problem, spark_session

    problem = java_problem()
    if problem:
        pytest.skip(problem)
    return spark_session(spark_settings())


@pytest.fixture(scope="session")
def spark_built(spark: Any, built: Built, engine: sa.Engine) -> SparkBuilt:  # noqa: F811
    from onramp.dbt import run_dbt
    from onramp.raw_schema import ensure_raw_schema_spark

    settings = spark_settings()
    result = SparkBuilt(spark=spark, settings=settings, as_of=AS_OF, pg=built)
    run_dbt(["run", "--full-refresh"], as_of=AS_OF)  # PostgreSQL, the suite's warehouse
    started = time.monotonic()
    ensure_raw_schema_spark(spark)
    copy_raw_to_spark(engine, spark)
    result.seconds["copy"] = time.monotonic() - started

    first = AS_OF - timedelta(days=1)
    started = time.monotonic()
    result.runs.append(run_dbt(["run", "--full-refresh"], as_of=first, settings=settings))
    result.seconds["full_run"] = time.monotonic() - started
    started = time.monotonic()
    result.runs.append(run_dbt(["build"], as_of=AS_OF, settings=settings, check=False))
    result.seconds["incremental_build"] = time.monotonic() - started
    return result
