"""With the Spark warehouse, copy the tables a sync reads from Spark into the state PostgreSQL.

email_sync's correctness lives in PostgreSQL: the diff, the ledger, every guardrail and the list
mirror are set-based SQL joining the segment table to `email_sync.*` in one transaction. Rather
than teach each of those statements a second engine, the sync reads the Spark-built relations it
joins (each synced segment's `seg_*` table and the goal segments its campaigns end on) into the
state database under the same schema and table names first; every statement then runs unchanged,
so exactly-once and the guardrails hold as they do on PostgreSQL.

How a table crosses, in bounded memory:

- Spark serves the table to Python as Arrow record batches (at most
  `spark.sql.execution.arrow.maxRecordsPerBatch` rows each), one partition at a time, and each
  batch is written as it arrives: Python holds one batch and the driver JVM two partitions of at
  most PARTITION_ROWS rows, whatever the size of the segment. Nothing is converted row by row:
  pyarrow writes each batch as CSV and PostgreSQL COPY reads it.
- One PostgreSQL transaction per table: create a new table, COPY into it, drop the old one,
  rename the new one into place, ANALYZE. A reader sees the previous table or the new one, never
  half of either; a crash or a Spark error mid-copy rolls back and leaves the previous table.
- A synced segment's table is swapped under that segment's sync lock, so it never changes under a
  running sync of the same segment.
- The copy's table comment carries a fingerprint of the Spark table's schema and data files:
  with no write on Spark since the last copy, the next sync reads nothing from Spark.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from email_sync.errors import SegmentBusy, one_line
from email_sync.segment_lock import segment_lock
from email_sync.specs import SegmentSpec
from onramp.errors import OnrampError
from onramp.settings import Settings

log = logging.getLogger(__name__)

_QUOTED = re.compile(r'^"([A-Za-z_][A-Za-z0-9_]*)"\."([A-Za-z_][A-Za-z0-9_]*)"$')
NEW_SUFFIX = "__spark_new"  # the table a copy fills before it is renamed into place


class MirrorError(OnrampError):
    """A Spark table could not be copied into the state database; the previous copy stands."""


@dataclass(frozen=True)
class Relation:
    """One Spark table the sync reads; `segment` names the synced segment that owns it, if any."""

    schema: str
    table: str
    segment: str | None = None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class MirrorResult:
    """What one mirror pass copied: tables, rows and seconds, and what it could not."""

    tables: dict[str, int] = field(default_factory=dict)  # schema.table -> rows copied
    unchanged: list[str] = field(default_factory=list)  # same Spark files as the copy: not read
    missing: list[str] = field(default_factory=list)  # not on Spark: the stale copy was dropped
    busy: list[str] = field(default_factory=list)  # segments a running sync holds: left as they are
    failed: dict[str, str] = field(default_factory=dict)  # schema.table -> why (old copy stands)
    seconds: float = 0.0

    def unusable(self, specs: Iterable[SegmentSpec]) -> dict[str, str]:
        """Segment name -> why it must not sync now: its table, or its campaign's goal table,
        failed to copy (syncing would decide on yesterday's members)."""
        out = {}
        for spec in specs:
            for rel in relations_for([spec]):
                if rel.name in self.failed:
                    out.setdefault(spec.name, self.failed[rel.name])
        return out

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def describe(self) -> str:
        """The one progress line `onramp sync` prints."""
        line = (
            f"read {self.rows:,} segment rows from Spark in {self.seconds:.1f} s "
            f"({len(self.tables)} table{'s' if len(self.tables) != 1 else ''})"
        )
        if self.unchanged:
            line += f"; unchanged since the last copy: {', '.join(self.unchanged)}"
        if self.missing:
            line += f"; not on Spark: {', '.join(self.missing)}"
        if self.busy:
            line += f"; being synced, not refreshed: {', '.join(self.busy)}"
        if self.failed:
            line += f"; failed: {', '.join(self.failed)}"
        return line


def relations_for(specs: Iterable[SegmentSpec]) -> list[Relation]:
    """Every warehouse relation a sync of `specs` reads: each segment's table (diff, guardrails,
    list mirror, notifications, preview) and each campaign's goal segment (sequences)."""
    found: dict[tuple[str, str], Relation] = {}
    specs = list(specs)
    for spec in specs:
        table = spec.table or f"seg_{spec.name}"
        found[(spec.schema, table)] = Relation(spec.schema, table, spec.name)
    for spec in specs:
        goal = spec.sequence.goal_relation if spec.sequence else None
        if goal:
            match = _QUOTED.match(goal)
            if match is None:  # specs only ever build `"schema"."table"` from checked names
                raise MirrorError(f"segment {spec.name}: unexpected goal relation {goal}")
            found.setdefault((match[1], match[2]), Relation(match[1], match[2]))
    return list(found.values())


def mirror_for_sync(
    engine: sa.Engine,
    settings: Settings,
    specs: Iterable[SegmentSpec],
    *,
    wait: bool = False,
    spark: Any = None,
) -> MirrorResult:
    """Copy what a sync of `specs` reads from Spark into the state database (see the module
    docstring). A segment whose sync is running elsewhere is left as it is (its own sync then
    says it is busy, or, with `wait`, the copy waits for it)."""
    if spark is None:
        from onramp.spark import spark_session

        spark = spark_session(settings)
    result = MirrorResult()
    started = time.perf_counter()
    for rel in relations_for(specs):
        if is_current(engine, spark, rel):
            result.unchanged.append(rel.name)
            continue
        try:
            rows = mirror_relation(engine, spark, rel, wait=wait)
        except SegmentBusy:
            result.busy.append(rel.segment or rel.name)
            continue
        except MirrorError as exc:  # one table's failure does not stop the others
            log.error("%s", exc)
            result.failed[rel.name] = str(exc)
            continue
        if rows is None:
            result.missing.append(rel.name)
        else:
            result.tables[rel.name] = rows
    result.seconds = time.perf_counter() - started
    log.info("%s", result.describe())
    return result


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


def is_current(engine: sa.Engine, spark: Any, rel: Relation) -> bool:
    """Whether the state database's copy was made from the Spark table's current files, so the
    copy can be skipped (a second sync without a rebuild reads nothing from Spark)."""
    if not spark.catalog.tableExists(rel.name):
        return False
    spark.catalog.refreshTable(rel.name)  # another process (dbt) may have rewritten it
    fingerprint = source_fingerprint(spark, rel.name)
    if fingerprint is None:
        return False
    with engine.connect() as conn:
        comment = conn.execute(
            sa.text("select obj_description(to_regclass(:rel), 'pg_class')"),
            {"rel": f'"{rel.schema}"."{rel.table}"'},
        ).scalar()
    return comment == COMMENT + fingerprint


def mirror_relation(
    engine: sa.Engine, spark: Any, rel: Relation, *, wait: bool = False
) -> int | None:
    """Replace the state database's copy of `rel` with Spark's table in one transaction; the
    number of rows, or None when Spark has no such table (then the stale copy is dropped, so the
    sync says the segment is missing instead of reading yesterday's members)."""
    with engine.connect() as conn:
        if rel.segment is None:
            return _copy(conn, spark, rel)
        with segment_lock(conn, rel.segment, wait):
            return _copy(conn, spark, rel)


def _copy(conn: sa.Connection, spark: Any, rel: Relation) -> int | None:
    from psycopg import sql

    target = sql.Identifier(rel.schema, rel.table)
    new = sql.Identifier(rel.schema, rel.table + NEW_SUFFIX)
    if len(rel.table + NEW_SUFFIX) > 63:  # PostgreSQL would truncate the name silently
        digest = hashlib.sha1(rel.table.encode()).hexdigest()[:16]
        new = sql.Identifier(rel.schema, f"spark_new_{digest}")
    if not spark.catalog.tableExists(rel.name):
        with conn.begin():
            _drop(conn, rel.schema, rel.table)
        log.warning("%s is not on Spark: its copy in the state database was dropped", rel.name)
        return None
    spark.catalog.refreshTable(rel.name)  # another process (dbt) may have rewritten it
    fingerprint = source_fingerprint(spark, rel.name)
    frame = spark.table(rel.name)
    columns = [_column(f) for f in frame.schema.fields]
    frame = frame.selectExpr(*(c.select for c in columns))
    raw = conn.connection.driver_connection  # psycopg 3: COPY in SQLAlchemy's transaction
    rows = 0
    try:
        with conn.begin():
            conn.exec_driver_sql(
                sql.SQL("create schema if not exists {}")
                .format(sql.Identifier(rel.schema))
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
            _drop(conn, rel.schema, rel.table)
            conn.exec_driver_sql(
                sql.SQL("alter table {} rename to {}")
                .format(new, sql.Identifier(rel.table))
                .as_string(raw)
            )
            # a fresh table has no statistics; the diff's plan depends on them
            conn.exec_driver_sql(sql.SQL("analyze {}").format(target).as_string(raw))
    except Exception as exc:
        raise MirrorError(
            f"copying {rel.name} from Spark failed, the previous copy stands: {one_line(exc)}"
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
        raise MirrorError(f"Spark sent {seen:,} of {expected:,} rows: the table changed mid-read")


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
