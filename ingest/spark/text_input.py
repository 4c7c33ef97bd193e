"""A raw file as Spark reads it: numbered text lines, gzip found by its magic bytes.

Spark picks a decompression codec by file name and skips names starting with `_` or `.`; the
PostgreSQL loader looks at the bytes. So Spark reads a symbolic link with a plain name that ends
in `.gz` exactly when the file is gzip, whatever the file is called.

Lines are read with `spark.read.text` (not `spark.read.json`/`csv` on the file) because a reject
and a developer row need their line number: dbt keeps the last row of a developer in file order,
and a reject points at the line to fix. Spark's text reader keeps every line, in file order within
each split; a line's number is its split's offset plus its place in the split.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingest.sources import BOM, GZIP_MAGIC

LINE = "line_number"


def is_gzip(path: Path) -> bool:
    """Whether the file starts with gzip's magic bytes (its name does not decide)."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


@contextmanager
def spark_path(path: Path) -> Iterator[str]:
    """A path Spark reads `path` through: a link named for its real compression."""
    with tempfile.TemporaryDirectory(prefix="onramp-spark-input-") as tmp:
        link = Path(tmp) / ("input.gz" if is_gzip(path) else "input")
        link.symlink_to(path.resolve())
        yield str(link)


def unfinished_end(path: Path) -> tuple[int, int] | None:
    """(complete lines, bytes after them) of a plain file whose last line has no line end yet.

    For a file still being written: its unfinished last line is held back, as the PostgreSQL
    loader does, and loads once the file is complete. None when the file ends with a line end.
    """
    size = path.stat().st_size
    if not size or is_gzip(path):
        return None
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        fh.seek(0)
        lines = last_end = offset = 0
        while chunk := fh.read(1 << 20):
            found = chunk.count(b"\n")
            if found:
                lines += found
                last_end = offset + chunk.rfind(b"\n") + 1
            offset += len(chunk)
    return lines, size - last_end


def numbered_lines(spark: Any, path: str) -> Any:
    """DataFrame (line_number, value) of every physical line, 1-based; a leading BOM removed.

    A file within one split (most files, and every gzip file) is numbered for free; a larger one
    costs one small job that counts the lines of each split.
    """
    from pyspark.sql import functions as F

    text = spark.read.text(path)
    parts = text.rdd.getNumPartitions()
    text = text.select(
        F.spark_partition_id().alias("_split"),
        F.monotonically_increasing_id().alias("_id"),
        "value",
    )
    # monotonically_increasing_id is (split << 33) + row within the split.
    within = F.col("_id") - F.shiftleft(F.col("_split").cast("long"), 33)
    if parts <= 1:
        number = within + 1
    else:
        counts = dict(text.groupBy("_split").count().collect())
        offsets, total = [], 0
        for split in range(parts):
            offsets.append(total)
            total += counts.get(split, 0)
        number = F.element_at(F.array(*[F.lit(o) for o in offsets]), F.col("_split") + 1)
        number = number + within + 1
    value = F.when(number == 1, F.regexp_replace("value", "^" + BOM.decode(), "")).otherwise(
        F.col("value")
    )
    return text.select(number.cast("long").alias(LINE), value.alias("value"))
