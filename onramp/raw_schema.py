"""The raw landing schema (raw.*): the tables ingest loads and the dbt sources read.

It lives in the core because both sides of it do: loads write these tables, and dbt must find its
sources even on an empty warehouse, so every load and every dbt build calls `ensure_raw_schema`
first. The DDL is idempotent and cheap once the schema exists.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import sqlalchemy as sa


def ensure_raw_schema(engine: sa.Engine) -> None:
    """Create the raw schema and its tables when missing (safe before every load and build)."""
    ddl = files("onramp").joinpath("raw_schema.sql").read_text()
    with engine.begin() as conn:
        # One advisory lock so two first loads racing do not both create the schema.
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('onramp.raw_schema'))"))
        conn.exec_driver_sql(ddl)


def ensure_raw_schema_spark(spark: Any) -> None:
    """The same raw tables in a Spark metastore (raw_schema_spark.sql), created when missing."""
    ddl = files("onramp").joinpath("raw_schema_spark.sql").read_text()
    body = "\n".join(line for line in ddl.splitlines() if not line.lstrip().startswith("--"))
    for statement in body.split(";\n"):
        if statement.strip():
            spark.sql(statement)
