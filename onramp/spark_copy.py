"""Copy a Spark table into PostgreSQL in bounded memory: the bridge for code whose SQL runs in
PostgreSQL (email_sync's ledger and guardrails, the funnel report, the CRM push) while the dbt
models are built on Spark.

How a table crosses:

- Spark serves the table to Python as Arrow record batches (at most
  `spark.sql.execution.arrow.maxRecordsPerBatch` rows each), one partition at a time, and each
  batch is written as it arrives: Python holds one batch and the driver JVM two partitions of at
  most PARTITION_ROWS rows, whatever the size of the table. Nothing is converted row by row:
  pyarrow writes each batch as CSV and PostgreSQL COPY reads it.
- One PostgreSQL transaction per table: create a new table, COPY into it, drop the old one,
  rename the new one into place, ANALYZE. A reader sees the previous table or the new one, never
  half of either; a crash or a Spark error mid-copy rolls back and leaves the previous table.
- The copy's table comment carries a fingerprint of the Spark table's schema and data files:
  with no write on Spark since the last copy, the next copy reads nothing from Spark.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from onramp.errors import OnrampError
from onramp.redaction import safe_line
from onramp.settings import Settings

log = logging.getLogger(__name__)

NEW_SUFFIX = "__spark_new"  # the table a copy fills before it is renamed into place


class SparkCopyError(OnrampError):
    """A Spark table could not be copied into PostgreSQL; the previous copy stands."""


COMMENT = "onramp: copy of the Spark table, source "  # + fingerprint, on the PostgreSQL copy


def source_fingerprint(spark: Any, name: str) -> str | None:
    """What identifies the Spark table's current contents: its schema and data files (Spark
    writes new file names on every write), or None when that cannot be told (no files listed,
    not a file-based table): then the table is always copied."""
    try:
        frame = spark.table(name)
        files = sorted(frame.inputFiles())
    except Exception:  # no fingerprint just means "copy it"
        return None
    if not files:
        return None
    text = "\n".join([frame.schema.simpleString(), *files])
    return hashlib.sha256(text.encode()).hexdigest()


def is_current(engine: sa.Engine, spark: Any, schema: str, table: str) -> bool:
    """Whether PostgreSQL's copy was made from the Spark table's current files, so the copy can
    be skipped (a second sync without a rebuild reads nothing from Spark)."""
    name = f"{schema}.{table}"
    if not spark.catalog.tableExists(name):
        return False
    spark.catalog.refreshTable(name)  # another process (dbt) may have rewritten it
    fingerprint = source_fingerprint(spark, name)
    if fingerprint is None:
        return False
    with engine.connect() as conn:
        comment = conn.execute(
            sa.text("select obj_description(to_regclass(:rel), 'pg_class')"),
            {"rel": f'"{schema}"."{table}"'},
        ).scalar()
    return comment == COMMENT + fingerprint


def copy_table(conn: sa.Connection, spark: Any, schema: str, table: str) -> int | None:
    """Replace PostgreSQL's `schema.table` with Spark's table in one transaction on `conn`; the
    number of rows, or None when Spark has no such table (then the stale copy is dropped, so a
    reader says the table is missing instead of reading yesterday's rows)."""
    from psycopg import sql

    name = f"{schema}.{table}"
    target = sql.Identifier(schema, table)
    new = sql.Identifier(schema, table + NEW_SUFFIX)
    if len(table + NEW_SUFFIX) > 63:  # PostgreSQL would truncate the name silently
        digest = hashlib.sha1(table.encode()).hexdigest()[:16]
        new = sql.Identifier(schema, f"spark_new_{digest}")
    if not spark.catalog.tableExists(name):
        with conn.begin():
            _drop(conn, schema, table)
        log.warning("%s is not on Spark: its copy in the state database was dropped", name)
        return None
    spark.catalog.refreshTable(name)  # another process (dbt) may have rewritten it
    fingerprint = source_fingerprint(spark, name)
    frame = spark.table(name)
    columns = [_column(f) for f in frame.schema.fields]
    frame = frame.selectExpr(*(c.select for c in columns))
    raw = conn.connection.driver_connection  # psycopg 3: COPY in SQLAlchemy's transaction
    rows = 0
    try:
        with conn.begin():
            conn.exec_driver_sql(
                sql.SQL("create schema if not exists {}")
                .format(sql.Identifier(schema))
                .as_string(raw)
            )
            conn.exec_driver_sql(sql.SQL("drop table if exists {}").format(new).as_string(raw))
            conn.exec_driver_sql(
                sql.SQL("create table {} ({})")
                .format(
                    new,
                    sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type))
                        for c in columns
                    ),
                )
                .as_string(raw)
            )
            copy_sql = sql.SQL("copy {} ({}) from stdin (format csv)").format(
                new, sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
            )
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:
                for batch in arrow_batches(frame):
                    rows += batch.num_rows
                    copy.write(_csv(batch))
            if fingerprint is not None:
                conn.exec_driver_sql(
                    sql.SQL("comment on table {} is {}")
                    .format(new, sql.Literal(COMMENT + fingerprint))
                    .as_string(raw)
                )
            _drop(conn, schema, table)
            conn.exec_driver_sql(
                sql.SQL("alter table {} rename to {}")
                .format(new, sql.Identifier(table))
                .as_string(raw)
            )
            # a fresh table has no statistics; the diff's plan depends on them
            conn.exec_driver_sql(sql.SQL("analyze {}").format(target).as_string(raw))
    except Exception as exc:
        raise SparkCopyError(
            f"copying {name} from Spark failed, the previous copy stands: {safe_line(exc)}"
        ) from exc
    return rows


def _drop(conn: sa.Connection, schema: str, table: str) -> None:
    """Drop the table (or a view left by a PostgreSQL build) if there is one."""
    kind = conn.execute(
        sa.text(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = :schema and c.relname = :table"
        ),
        {"schema": schema, "table": table},
    ).scalar()
    if kind is None:
        return
    what = {"v": "view", "m": "materialized view"}.get(kind, "table")
    conn.exec_driver_sql(f'drop {what} "{schema}"."{table}"')


@dataclass(frozen=True)
class _Column:
    name: str
    pg_type: str
    select: str  # the Spark expression that gives a CSV-writable value


def _column(f: Any) -> _Column:
    """PostgreSQL type for a Spark field, and the Spark expression that makes it CSV-writable
    (nested types travel as JSON text, binary as bytea's hex form)."""
    from pyspark.sql import types as T

    dt = f.dataType
    quoted = f"`{f.name.replace('`', '``')}`"
    simple = {
        T.StringType: "text",
        T.VarcharType: "text",
        T.CharType: "text",
        T.BooleanType: "boolean",
        T.ByteType: "smallint",
        T.ShortType: "smallint",
        T.IntegerType: "integer",
        T.LongType: "bigint",
        T.FloatType: "real",
        T.DoubleType: "double precision",
        T.DateType: "date",
        T.TimestampType: "timestamp with time zone",
        T.TimestampNTZType: "timestamp without time zone",
    }
    for spark_type, pg_type in simple.items():
        if isinstance(dt, spark_type):
            return _Column(f.name, pg_type, quoted)
    if isinstance(dt, T.DecimalType):
        return _Column(f.name, f"numeric({dt.precision},{dt.scale})", quoted)
    if isinstance(dt, T.BinaryType):
        return _Column(f.name, "bytea", f"concat('\\\\x', hex({quoted})) as {quoted}")
    if isinstance(dt, (T.ArrayType, T.MapType, T.StructType)):
        return _Column(f.name, "jsonb", f"to_json({quoted}) as {quoted}")
    return _Column(f.name, "text", f"cast({quoted} as string) as {quoted}")


def _csv(batch: Any) -> bytes:
    """One Arrow batch as PostgreSQL-readable CSV (a quoted "" is an empty string, nothing is
    NULL), converted in pyarrow's C++ code."""
    import pyarrow.csv as pa_csv

    buf = io.BytesIO()
    pa_csv.write_csv(batch, buf, pa_csv.WriteOptions(include_header=False))
    return buf.getvalue()


PARTITION_ROWS = 200_000  # at most this many rows per Spark partition while a table crosses


def arrow_batches(frame: Any) -> Iterator[Any]:
    """The frame's rows as Arrow record batches, one partition at a time.

    `DataFrame.toArrow()` and `_collect_as_arrow()` gather every batch first, and Spark's Arrow
    collect holds finished partitions in the driver while Python reads: memory grows with the
    segment. Here the JVM serves the frame's Arrow batches (`toArrowBatchRdd`, at most
    `spark.sql.execution.arrow.maxRecordsPerBatch` rows each) with `toLocalIterator`'s protocol:
    one partition is computed while the previous one is read, and a frame whose partitions would
    exceed PARTITION_ROWS is repartitioned first. So the driver holds at most two partitions and
    Python one batch, however large the table. A Spark Connect session (no JVM handle) is read
    in slices instead. The rows are counted first and checked at the end: a table rewritten while
    it was read fails the copy rather than crossing half.
    """
    jdf = getattr(frame, "_jdf", None)
    if jdf is None:
        yield from _sliced_batches(frame)
        return
    import pyarrow as pa
    from pyspark.serializers import NoOpSerializer
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.traceback_utils import SCCallSiteSync
    from pyspark.util import _local_iterator_from_socket

    expected = frame.count()
    batches = jdf.toArrowBatchRdd()
    if expected > max(batches.getNumPartitions(), 1) * PARTITION_ROWS:
        frame = frame.repartition(-(-expected // PARTITION_ROWS))
        batches = frame._jdf.toArrowBatchRdd()
    conf = frame.sparkSession.conf
    schema = to_arrow_schema(
        frame.schema,
        timezone=conf.get("spark.sql.session.timeZone"),
        prefers_large_types=conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")
        == "true",
    )
    context = frame.sparkSession.sparkContext
    with SCCallSiteSync(context):
        sock_info = context._jvm.PythonRDD.toLocalIteratorAndServe(batches, True)
    seen = 0
    for message in _local_iterator_from_socket(sock_info, NoOpSerializer()):
        batch = pa.ipc.read_record_batch(pa.py_buffer(message), schema)
        seen += batch.num_rows
        yield batch
    if seen != expected:
        raise SparkCopyError(
            f"Spark sent {seen:,} of {expected:,} rows: the table changed mid-read"
        )


SLICE_ROWS = 100_000  # rows per slice on Spark Connect, where no batch stream is exposed


def _sliced_batches(frame: Any) -> Iterator[Any]:
    """Spark Connect: slices of about SLICE_ROWS rows by a hash of every column, each fetched with
    `toArrow()`; memory holds one slice."""
    from pyspark.sql import functions as F

    total = frame.count()
    slices = max(1, -(-total // SLICE_ROWS))
    bucket = F.pmod(F.xxhash64(*[F.col(c) for c in frame.columns]), F.lit(slices))
    for i in range(slices):
        yield from frame.where(bucket == i).toArrow().to_batches()


def copy_tables(
    engine: sa.Engine, settings: Settings, names: Iterable[str], spark: Any = None
) -> dict[str, int | None]:
    """Copy each `schema.table` from Spark unless PostgreSQL's copy is current: name -> rows
    copied (0 when current, None when not on Spark). For readers without locks of their own
    (the funnel report, the CRM push)."""
    if spark is None:
        from onramp.spark import spark_session

        spark = spark_session(settings)
    copied: dict[str, int | None] = {}
    for name in names:
        schema, table = name.split(".", 1)
        if is_current(engine, spark, schema, table):
            copied[name] = 0
            continue
        with engine.connect() as conn:
            copied[name] = copy_table(conn, spark, schema, table)
    return copied
