"""raw.load_batches on Spark: an append-only log, since a Parquet table has no UPDATE.

A batch is written twice: a `loading` row before any of its data (so its id is taken and a crash
leaves a visible trace), and its final row (`loaded`, or `failed` with the reason) after the data
is in. The latest row of a batch id is its state; a batch counts as loaded, and its file as
loaded before, only once its `loaded` row exists, which is written after the data insert. Batch
ids are the largest id so far plus one: Spark has no sequences. One loader at a time per
warehouse, as `onramp load` and the landing sensor run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TABLE = "raw.load_batches"
COLUMNS = (
    "batch_id",
    "kind",
    "path",
    "checksum",
    "format",
    "status",
    "rows_loaded",
    "rows_duplicate",
    "rows_rejected",
    "started_at",
    "finished_at",
    "seconds",
    "error",
)
SCHEMA = (
    "batch_id bigint, kind string, path string, checksum string, format string, status string,"
    " rows_loaded bigint, rows_duplicate bigint, rows_rejected bigint, started_at timestamp,"
    " finished_at timestamp, seconds double, error string"
)


@dataclass
class Batch:
    """One file's row in raw.load_batches, as it is written (twice: loading, then final)."""

    batch_id: int
    kind: str
    path: str
    checksum: str
    format: str
    started_at: datetime
    status: str = "loading"
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    finished_at: datetime | None = None
    seconds: float | None = None
    error: str | None = None

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def lookup(spark: Any, kind: str, checksum: str) -> tuple[int | None, int]:
    """(the batch that loaded these bytes of this kind, if any; the next free batch id).

    One query for both: every Spark job costs a second or so. The next id is the largest so far
    plus one, and a crashed batch's `loading` row keeps its id taken.
    """
    previous, largest = spark.sql(
        f"select max(case when kind = {_quote(kind)} and checksum = {_quote(checksum)}"
        f" and status = 'loaded' then batch_id end), max(batch_id) from {TABLE}"
    ).collect()[0]
    return (
        None if previous is None else int(previous),
        1 if largest is None else int(largest) + 1,
    )


def write(spark: Any, batch: Batch) -> None:
    """Append the batch's current state (one row)."""
    spark.createDataFrame([batch.row()], SCHEMA).coalesce(1).write.insertInto(TABLE)


def now() -> datetime:
    """UTC wall time, zone-aware: PySpark reads a naive datetime in the process's local zone."""
    return datetime.now(UTC)
