"""`onramp load` into the Spark warehouse: one batch per file, idempotent, rejects kept.

How each guarantee of the PostgreSQL loader (ingest.loader) is kept without transactions:
- A file whose bytes (sha256) were loaded before as the same kind is skipped: its `loaded` row in
  raw.load_batches is found before anything is read.
- Events: an event_id repeated within the file is kept once (its first line), and one already in
  raw.api_events adds nothing (a left anti-join against the event_date partitions the file
  touches, not the whole table); both count as duplicates.
- A crash mid-load never leaves a batch that looks loaded: the `loaded` row is written after the
  data insert (see ingest.spark.batches), so a rerun loads the file again and its events already
  inserted are duplicates.
- Bad rows go to raw.load_rejects with the same reasons (ingest.spark.rules), line numbers and
  raw text; at most MAX_STORED_REJECTS per file are stored, all are counted.
Canonical JSONL and CSV (plain or gzip) are read by Spark itself (ingest.spark.text_input,
ingest.spark.values); Moesif and access logs go through the Python parsers first
(ingest.spark.canonical says why).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ingest.access_log import validate_caller
from ingest.csv_format import MissingColumns, csv_rows
from ingest.event_rows import EVENT_COLUMNS
from ingest.loader import (
    FORMATS,
    MAX_REJECT_TEXT,
    MAX_STORED_REJECTS,
    SETTLE_SECONDS,
    BatchResult,
    LoadError,
    detect_format,
    file_checksum,
    normalise_kind,
)
from ingest.reference_rows import TABLE_SPECS
from ingest.sources import Source
from ingest.spark import batches
from ingest.spark.batches import Batch
from ingest.spark.canonical import write_canonical_events
from ingest.spark.rules import REASON, events, reference
from ingest.spark.text_input import is_gzip, numbered_lines, spark_path, unfinished_end
from ingest.spark.values import csv_values, json_values
from onramp.raw_schema import ensure_raw_schema_spark

log = logging.getLogger(__name__)

EVENT_TABLE_COLUMNS = (*EVENT_COLUMNS, "extras", "batch_id", "event_date")


def load_paths_spark(
    spark: Any,
    kind: str,
    paths: Iterable[str | Path],
    fmt: str = "auto",
    caller: str | None = None,
) -> list[BatchResult]:
    """Load each file as its own batch into the Spark raw tables (see the module docstring).

    A file that cannot be loaded at all is recorded as a failed batch with its reason and the
    others still load, as with PostgreSQL.
    """
    kind = normalise_kind(kind)
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise LoadError(f"no such file: {path}" if not path.exists() else f"not a file: {path}")
    try:
        validate_caller(caller)
    except ValueError as exc:
        raise LoadError(str(exc)) from exc
    fmt = (fmt or "auto").strip().lower()
    if fmt != "auto" and fmt not in FORMATS[kind]:
        allowed = ", ".join(FORMATS[kind])
        raise LoadError(f"unknown format {fmt!r} for {kind.replace('_', '-')}: use auto, {allowed}")
    ensure_raw_schema_spark(spark)
    return [load_file_spark(spark, kind, path, fmt, caller) for path in paths]


def load_file_spark(
    spark: Any, kind: str, path: Path, fmt: str = "auto", caller: str | None = None
) -> BatchResult:
    """Load one file; a file that cannot be loaded at all comes back as a failed result."""
    started = time.perf_counter()
    try:
        fmt = detect_format(kind, path) if fmt == "auto" else fmt
        checksum = file_checksum(path)
    except (LoadError, OSError) as exc:
        reason = str(exc) if isinstance(exc, LoadError) else f"cannot read it: {exc}"
        return _failed(spark, kind, path, fmt if fmt != "auto" else "unknown", "", started, reason)
    previous, batch_id = batches.lookup(spark, kind, checksum)
    if previous is not None:
        log.info("skipping %s: loaded before as batch %s", path, previous)
        seconds = time.perf_counter() - started
        return BatchResult(str(path), kind, fmt, 0, 0, 0, True, seconds, previous, checksum)
    batch = Batch(batch_id, kind, str(path.resolve()), checksum, fmt, batches.now())
    batches.write(spark, batch)
    writing = time.time() - path.stat().st_mtime < SETTLE_SECONDS
    try:
        loaded, duplicates, rejected, held_back = _load(
            spark, kind, path, fmt, caller, batch.batch_id, writing
        )
    except MissingColumns as exc:
        return _failed(spark, kind, path, fmt, checksum, started, str(exc), batch)
    except OSError as exc:
        reason = f"cannot read it: {exc.strerror or exc}"
        return _failed(spark, kind, path, fmt, checksum, started, reason, batch)
    except Exception as exc:  # Spark's errors (a corrupt gzip, a full disk) carry pages of stack
        if type(exc).__module__.split(".")[0] not in ("pyspark", "py4j"):
            raise
        reason = _spark_reason(exc, path)
        return _failed(spark, kind, path, fmt, checksum, started, reason, batch)
    # Not 'loaded' when the end was held back: the same bytes, once settled, load again.
    batch.status = "partial" if held_back else "loaded"
    batch.rows_loaded, batch.rows_duplicate, batch.rows_rejected = loaded, duplicates, rejected
    batch.finished_at = batches.now()
    batch.seconds = time.perf_counter() - started
    batches.write(spark, batch)
    notes: list[str] = []
    if rejected > MAX_STORED_REJECTS:
        notes.append(
            f"{rejected:,} rejects: only the first {MAX_STORED_REJECTS:,} are stored in"
            " raw.load_rejects (all are counted)"
        )
    if held_back:
        notes.append(
            "changed moments ago and its end is unfinished: the last"
            f" {held_back:,} bytes are held back until the file is complete"
        )
    for note in notes:
        log.warning("%s: %s", path, note)
    return BatchResult(
        str(path),
        kind,
        fmt,
        loaded,
        duplicates,
        rejected,
        False,
        batch.seconds,
        batch.batch_id,
        checksum,
        notes=tuple(notes),
    )


def _load(
    spark: Any,
    kind: str,
    path: Path,
    fmt: str,
    caller: str | None,
    batch_id: int,
    writing: bool = False,
) -> tuple[int, int, int, int]:
    """(rows loaded, duplicates, rejects, bytes held back) of one file, its rows and rejects
    written. With `writing` (changed moments ago), an unfinished last line is held back."""
    with tempfile.TemporaryDirectory(prefix="onramp-spark-load-") as tmp:
        python_rejects: list[tuple[int, str, str]] = []  # the first MAX_STORED_REJECTS
        python_rejected = 0
        if fmt in ("moesif", "combined"):
            canonical = Path(tmp) / "events.jsonl"

            def reject(lineno: int, reason: str, raw: str) -> None:
                nonlocal python_rejected
                python_rejected += 1
                if len(python_rejects) < MAX_STORED_REJECTS:
                    python_rejects.append((lineno, reason, raw[:MAX_REJECT_TEXT]))

            _, held_back = write_canonical_events(path, fmt, caller, reject, canonical, writing)
            path, fmt, max_line = canonical, "jsonl", None
        else:
            end = unfinished_end(path) if writing else None
            max_line, held_back = end if end is not None else (None, 0)
        with spark_path(path) as spark_input:
            checked = _checked_rows(spark, kind, path, fmt, spark_input, max_line)
            if checked is None:  # a CSV file with no header: nothing to load
                rows = None
            else:
                rows = checked.persist()
            try:
                loaded, duplicates, rejected = _write(spark, kind, rows, batch_id, python_rejects)
                rejected += python_rejected - len(python_rejects)
                return loaded, duplicates, rejected, held_back
            finally:
                if rows is not None:
                    rows.unpersist()


def _checked_rows(
    spark: Any, kind: str, path: Path, fmt: str, spark_input: str, max_line: int | None = None
) -> Any:
    """Every non-blank line (up to `max_line`) with its reject reason (NULL if good) and typed
    columns."""
    from pyspark.sql import functions as F

    columns = EVENT_COLUMNS if kind == "api_events" else tuple(n for n, _ in TABLE_SPECS[kind])
    lines = numbered_lines(spark, spark_input)
    if max_line is not None:
        lines = lines.where(F.col("line_number") <= max_line)
    if fmt == "jsonl":
        values = json_values(lines, columns)
    else:
        first = next(csv_rows(Source(path).lines(), lambda *_: None), None)
        if first is None:
            return None
        header_line, fields = first[0], first[1]
        header = [name.strip().lower() for name in fields]
        required = ("developer_id", "occurred_at") if kind == "api_events" else (columns[0],)
        for name in required:
            if name not in header:
                raise MissingColumns(f"{path}: no {name} column in the CSV header")
        values = csv_values(lines, header, header_line, columns)
    return events(values) if kind == "api_events" else reference(kind, values)


def _write(
    spark: Any,
    kind: str,
    rows: Any,
    batch_id: int,
    python_rejects: list[tuple[int, str, str]],
) -> tuple[int, int, int]:
    from pyspark.sql import functions as F

    if rows is not None and kind == "api_events":
        rows = rows.withColumn("event_date", F.to_date("occurred_at"))
        key = "event_date"
    else:
        key = None
    # One pass over the file: reject count, good rows and (for events) the days they fall on.
    counts: dict[Any, int] = {}
    rejected = 0
    if rows is not None:
        group = [F.col(REASON).isNotNull().alias("bad")] + ([F.col(key)] if key else [])
        for row in rows.groupBy(*group).count().collect():
            if row["bad"]:
                rejected += row["count"]
            else:
                counts[row[key] if key else None] = row["count"]
    good = sum(counts.values())
    _write_rejects(spark, rows if rejected else None, batch_id, python_rejects)
    rejected += len(python_rejects)
    if not good:
        return 0, 0, rejected
    valid = rows.where(F.col(REASON).isNull())
    if kind != "api_events":
        columns = [n for n, _ in TABLE_SPECS[kind]]
        out = valid.select(
            *columns, "extras", F.lit(batch_id).cast("long").alias("batch_id"), "line_number"
        )
        out.coalesce(1).write.insertInto(f"raw.{kind}")
        return good, 0, rejected
    loaded = _write_events(spark, valid, batch_id, sorted(counts))
    return loaded, good - loaded, rejected


def _write_events(spark: Any, valid: Any, batch_id: int, days: list[Any]) -> int:
    """Insert the new events; returns how many were new."""
    from pyspark.sql import Observation, Window
    from pyspark.sql import functions as F

    # The first line of an event_id repeated within the file is kept. Partitioning by day first
    # lets the dedupe, the anti-join and the one-file-per-day write share one shuffle.
    first = Window.partitionBy("event_date", "event_id").orderBy("line_number")
    fresh = (
        valid.repartition("event_date")
        .withColumn("_n", F.row_number().over(first))
        .where(F.col("_n") == 1)
    )
    loaded_events = (
        spark.table("raw.api_events")
        .where(F.col("event_date").isin(days))
        .select("event_date", "event_id")
    )
    new = fresh.join(loaded_events, ["event_date", "event_id"], "left_anti")
    out = new.select(
        *EVENT_COLUMNS,
        "extras",
        F.lit(batch_id).cast("long").alias("batch_id"),
        "event_date",
    )
    # Counted while written (an observation), not by another job over the new files.
    written = Observation(f"batch_{batch_id}")
    out.observe(written, F.count(F.lit(1)).alias("rows")).write.insertInto("raw.api_events")
    return int(written.get["rows"])


def _write_rejects(
    spark: Any,
    rows: Any,
    batch_id: int,
    python_rejects: list[tuple[int, str, str]],
) -> None:
    from pyspark.sql import functions as F

    schema = "batch_id bigint, line_number bigint, reason string, raw_text string"
    if python_rejects:
        kept = [(batch_id, n, r, t) for n, r, t in python_rejects[:MAX_STORED_REJECTS]]
        spark.createDataFrame(kept, schema).coalesce(1).write.insertInto("raw.load_rejects")
    room = MAX_STORED_REJECTS - len(python_rejects)
    if rows is None or room <= 0:
        return
    bad = rows.where(F.col(REASON).isNotNull()).select(
        F.lit(batch_id).cast("long").alias("batch_id"),
        "line_number",
        F.col(REASON).alias("reason"),
        F.translate(F.substring("raw_text", 1, MAX_REJECT_TEXT), "\x00", "\ufffd").alias(
            "raw_text"
        ),
    )
    bad.orderBy("line_number").limit(room).coalesce(1).write.insertInto("raw.load_rejects")


def _spark_reason(exc: Exception, path: Path) -> str:
    """One line for a Spark job that failed on this file: the innermost Java cause."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    cause = ""
    try:
        while java is not None:
            cause = str(java.toString())
            java = java.getCause()
    except Exception:  # the JVM is gone or the object is not a Throwable
        cause = ""
    if not cause:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if is_gzip(path) and ("EOFException" in cause or "ZipException" in cause):
        # Spark decompresses a gzip file in one stream: a break fails the file as a whole.
        return f"corrupt or truncated gzip, nothing of it loaded ({cause})"
    return f"Spark could not load it: {cause}"


def _failed(
    spark: Any,
    kind: str,
    path: Path,
    fmt: str,
    checksum: str,
    started: float,
    reason: str,
    batch: Batch | None = None,
) -> BatchResult:
    """Record a file that could not be loaded as a failed batch, and say so once in the log."""
    if batch is None:
        batch = Batch(
            batches.lookup(spark, kind, checksum)[1],
            kind,
            str(path.resolve()),
            checksum,
            fmt,
            batches.now(),
        )
    batch.status, batch.error = "failed", reason
    batch.finished_at = batches.now()
    batch.seconds = time.perf_counter() - started
    batches.write(spark, batch)
    log.info("%s not loaded: %s", path, reason)
    return BatchResult(
        str(path), kind, fmt, 0, 0, 0, False, batch.seconds, batch.batch_id, checksum, error=reason
    )
