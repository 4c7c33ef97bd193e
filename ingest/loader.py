"""Load raw files into raw.* with PostgreSQL COPY: one transaction per file, idempotent, streamed.

Why it is shaped like this:
- Atomic: the batch row, the loaded rows and the rejects of a file are written in one transaction,
  so a crash (or a kill) mid-file leaves nothing of that file behind and a rerun loads it whole.
- Idempotent twice over: a file whose sha256 was loaded before is skipped, and an API event whose
  event_id is already in raw.api_events adds nothing.
- Fast: the parsers turn whole blocks of regular rows into COPY text at C speed (parsers.py),
  a writer thread sends one chunk while the next is parsed, and events are first COPYed straight
  into raw.api_events under a savepoint, with events repeated within the file dropped on the way
  (RecentIds). Only when that still hits a duplicate event_id (an event loaded before, or repeated
  from far back) is the file parsed again into a temporary table and merged with
  `on conflict do nothing`, which costs about twice as much. Measured alternatives that were
  slower: always staging (INSERT ... ON CONFLICT is about 2x a COPY), probing each chunk's ids
  before its COPY (about +60%), and letting PostgreSQL parse the JSON (jsonb input is slower than
  the Python fast path, and it runs on the core the COPY already saturates).
- Flat memory: files are read in 1 MB chunks, rejects spool to disk, the COPY queue is bounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from queue import Queue
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter

from ingest import parsers
from ingest.schema import ensure_raw_schema
from ingest.sources import Source
from onramp.errors import OnrampError

log = logging.getLogger(__name__)

KINDS = ("developers", "endpoints", "incidents", "api_events")  # also the manifest load order
FORMATS = {
    "api_events": ("jsonl", "csv", "moesif", "combined"),
    "developers": ("jsonl", "csv"),
    "incidents": ("jsonl", "csv"),
    "endpoints": ("jsonl", "csv"),
}
COPY_WRITE_CHARS = 1 << 20
MAX_REJECT_TEXT = 1 << 20


class LoadError(OnrampError):
    """A file cannot be loaded at all (missing, unknown format, wrong header)."""


@dataclass(frozen=True)
class BatchResult:
    """What one file load did; `skipped` means the same bytes were loaded before."""

    path: str
    kind: str
    format: str
    rows_loaded: int
    rows_duplicate: int
    rows_rejected: int
    skipped: bool
    seconds: float
    batch_id: int | None = None
    checksum: str = ""


def normalise_kind(kind: str) -> str:
    key = kind.strip().lower().replace("-", "_")
    if key in ("events", "api_event"):
        key = "api_events"
    if key not in FORMATS:
        raise LoadError(
            f"unknown kind {kind!r}: use api-events, developers, incidents or endpoints"
        )
    return key


# -- format detection ----------------------------------------------------------------------------
def detect_format(kind: str, path: Path) -> str:
    """Format from the extension (under .gz) and, where that is not enough, from the content."""
    name = path.name.lower()
    for suffix in (".gz", ".gzip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    ext = Path(name).suffix
    if ext == ".csv":
        return "csv"
    if kind == "api_events" and (ext == ".log" or "access" in name):
        return "combined"
    if kind != "api_events" and ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    sniffed = _sniff(kind, Source(path).head())
    if sniffed is None:
        raise LoadError(
            f"cannot tell the format of {path}: pass --format " + "|".join(FORMATS[kind])
        )
    return sniffed


def _sniff(kind: str, head: bytes) -> str | None:
    text = head.decode("utf-8", "replace").lstrip()
    if not text:
        return "csv" if kind != "api_events" else None
    first = text.split("\n", 1)[0].rstrip("\r")
    if text.startswith("["):
        return "moesif" if kind == "api_events" else None
    if text.startswith("{"):
        if kind != "api_events":
            return "jsonl"
        try:
            obj = json.loads(first)
        except ValueError:
            return "moesif" if '"request"' in first else "jsonl"
        return "moesif" if isinstance(obj, dict) and "request" in obj else "jsonl"
    if kind == "api_events" and parsers._COMBINED.match(first):
        return "combined"
    if "," in first:
        return "csv"
    return None


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- rejects -------------------------------------------------------------------------------------
class RejectSpool:
    """Rejects of one file, spooled to disk past a few MB so a file of bad rows stays bounded."""

    def __init__(self, batch_id: int) -> None:
        self.batch = str(batch_id)
        self.count = 0
        self.reasons: dict[str, int] = {}
        self._file = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8")

    def add(self, lineno: int, reason: str, raw: str) -> None:
        self.count += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        text = raw[:MAX_REJECT_TEXT].replace("\x00", "\ufffd")
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
        esc = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        esc = esc.replace("\r", "\\r")
        self._file.write(f"{self.batch}\t{lineno}\t{reason}\t{esc}\n")

    def reset(self) -> None:
        self.count = 0
        self.reasons.clear()
        self._file.seek(0)
        self._file.truncate()

    def copy_into(self, cur: psycopg.Cursor) -> None:
        if not self.count:
            return
        self._file.seek(0)
        with cur.copy(
            "copy raw.load_rejects (batch_id, line_number, reason, raw_text) from stdin"
        ) as copy:
            while chunk := self._file.read(1 << 20):
                copy.write(chunk)

    def close(self) -> None:
        self._file.close()


# -- loading -------------------------------------------------------------------------------------
class _BoundedQueuedWriter(QueuedLibpqWriter):
    """psycopg's threaded COPY writer with a short queue.

    The stock queue holds 1024 buffers, so a parser faster than the server could buffer most of
    a big file in memory; 32 buffers (a few MB) keep the pipeline busy and memory flat.
    """

    def __init__(self, cursor: psycopg.Cursor) -> None:
        super().__init__(cursor)
        self._queue: Queue[Any] = Queue(maxsize=32)


class RecentIds:
    """Drops events whose event_id was already sent in this file, within a recent window.

    Files often repeat an event a little later (a retried delivery). Without this, one repeat
    fails the direct COPY and the whole file is merged through a staging table at about twice
    the cost. Memory stays bounded: the window is two generations of at most WINDOW ids. A repeat
    from further back (or of an event loaded before) still takes the merge path.
    """

    WINDOW = 250_000  # ids; the sample data repeats events up to ~3 days (~185k lines) later

    def __init__(self, column: int) -> None:
        # The id is the `column`-th field of a COPY line (tab separated, escaped consistently).
        skip = r"[^\t\n]*+\t" * column
        self._ids = re.compile(rf"{skip}([^\t\n]*+)[^\n]*+\n").findall
        self.current: set[str] = set()
        self.previous: set[str] = set()
        self.dropped = 0

    def filter(self, chunk: str) -> str:
        """`chunk` (whole COPY lines) without the lines whose id was seen before."""
        ids = self._ids(chunk)
        new = set(ids)
        if len(new) == len(ids) and new.isdisjoint(self.current) and new.isdisjoint(self.previous):
            self._remember(new)
            return chunk
        lines = chunk.split("\n")  # not splitlines(): values may hold other line breaks
        lines.pop()
        kept = []
        seen = self.current
        for line, event_id in zip(lines, ids, strict=True):
            if event_id in seen or event_id in self.previous:
                self.dropped += 1
                continue
            seen.add(event_id)
            kept.append(line)
        self._remember(set())
        return "\n".join(kept) + "\n" if kept else ""

    def _remember(self, ids: set[str]) -> None:
        self.current |= ids
        if len(self.current) >= self.WINDOW:
            self.previous, self.current = self.current, set()


def _copy_lines(
    cur: psycopg.Cursor, table: str, parsed: Iterable[Any], dedupe: bool = False
) -> tuple[int, int]:
    """COPY a parser's output into `table`; returns (rows sent, repeats dropped).

    A parser yields its COPY column order first, then COPY text pieces: single rows or long
    validated runs. Pieces are written in writes of about COPY_WRITE_CHARS, so the server parses
    one chunk while Python prepares the next. With `dedupe`, events repeated within the file are
    dropped before they reach the server (see RecentIds).
    """
    it = iter(parsed)
    columns = next(it, None)
    if columns is None:
        return 0, 0
    recent = RecentIds(list(columns).index("event_id")) if dedupe else None
    sent = 0
    buf: list[str] = []
    size = 0
    # A writer thread sends while this thread parses the next chunk: parsing and the server's
    # COPY work overlap instead of taking turns.
    sql = f"copy {table} ({', '.join(columns)}) from stdin {parsers.COPY_OPTIONS}"
    with cur.copy(sql, writer=_BoundedQueuedWriter(cur)) as copy:
        for piece in chain(it, [None]):
            if piece is not None:
                buf.append(piece)
                size += len(piece)
                if size < COPY_WRITE_CHARS:
                    continue
            if not buf:
                break
            chunk = "".join(buf)
            buf.clear()
            size = 0
            if recent is not None:
                chunk = recent.filter(chunk)
                if not chunk:
                    continue
            copy.write(chunk)
            sent += chunk.count("\n")
    return sent, recent.dropped if recent is not None else 0


def _parse(
    kind: str,
    fmt: str,
    source: Source,
    reject: Callable[[int, str, str], None],
    batch: str,
    caller: str | None,
) -> Iterator[str]:
    if kind == "api_events":
        parse = {
            "csv": parsers.parse_csv_events,
            "jsonl": parsers.parse_jsonl_events,
            "moesif": parsers.parse_moesif_events,
            "combined": parsers.parse_combined_events,
        }[fmt]
        return parse(source, reject, batch, caller)
    if fmt == "csv":
        return parsers.parse_csv_table(kind, source, reject, batch)
    return parsers.parse_jsonl_table(kind, source, reject, batch)


def _columns(kind: str) -> str:
    cols = parsers.EVENT_COPY_COLUMNS if kind == "api_events" else parsers.table_copy_columns(kind)
    return ", ".join(cols)


def load_file(
    engine: sa.Engine,
    kind: str,
    path: str | Path,
    fmt: str = "auto",
    caller: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Load one file in one transaction; see the module docstring for the guarantees."""
    kind = normalise_kind(kind)
    path = Path(path)
    _check_path(path)
    fmt = _resolve_format(kind, path, fmt)
    started = time.perf_counter()
    checksum = file_checksum(path)
    raw_conn = engine.raw_connection()
    try:
        pg: psycopg.Connection = raw_conn.driver_connection  # type: ignore[assignment]
        pg.rollback()
        saved_autocommit = pg.autocommit
        pg.autocommit = True
        try:
            return _load_in_transaction(pg, kind, path, fmt, caller, progress, checksum, started)
        except psycopg.Error as exc:
            _record_failure(pg, kind, path, fmt, checksum, started)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LoadError(f"loading {path} failed, nothing of it was kept: {first}") from exc
        except parsers.MissingColumns as exc:
            raise LoadError(str(exc)) from exc
        finally:
            pg.autocommit = saved_autocommit
    finally:
        raw_conn.close()


def _load_in_transaction(
    pg: psycopg.Connection,
    kind: str,
    path: Path,
    fmt: str,
    caller: str | None,
    progress: Callable[[int], None] | None,
    checksum: str,
    started: float,
) -> BatchResult:
    with pg.transaction(), pg.cursor() as cur:
        cur.execute("set local timezone = 'UTC'")
        # Two loads of the same bytes at once: the second waits, then sees the first and skips.
        cur.execute(
            "select pg_advisory_xact_lock(hashtext(%s))", (f"onramp.load:{kind}:{checksum}",)
        )
        cur.execute(
            "select batch_id from raw.load_batches"
            " where kind = %s and checksum = %s and status = 'loaded'",
            (kind, checksum),
        )
        previous = cur.fetchone()
        if previous is not None:
            if progress is not None:
                progress(path.stat().st_size)
            log.info("skipping %s: loaded before as batch %s", path, previous[0])
            return BatchResult(
                str(path),
                kind,
                fmt,
                0,
                0,
                0,
                True,
                time.perf_counter() - started,
                previous[0],
                checksum,
            )
        cur.execute(
            "insert into raw.load_batches (kind, path, checksum, format)"
            " values (%s, %s, %s, %s) returning batch_id",
            (kind, str(path.resolve()), checksum, fmt),
        )
        batch_id = cur.fetchone()[0]
        batch = str(batch_id)
        rejects = RejectSpool(batch_id)
        try:
            columns = _columns(kind)
            duplicates = 0
            if kind != "api_events":
                source = Source(path, rejects.add, progress)
                loaded, _ = _copy_lines(
                    cur, f"raw.{kind}", _parse(kind, fmt, source, rejects.add, batch, caller)
                )
            else:
                loaded, duplicates = _load_events(
                    pg, cur, path, fmt, caller, progress, rejects, batch, columns
                )
            rejects.copy_into(cur)
            seconds = time.perf_counter() - started
            cur.execute(
                "update raw.load_batches set status = 'loaded', rows_loaded = %s,"
                " rows_duplicate = %s, rows_rejected = %s, finished_at = clock_timestamp(),"
                " seconds = %s"
                " where batch_id = %s",
                (loaded, duplicates, rejects.count, seconds, batch_id),
            )
            if rejects.count:
                log.info("%s: %d rejects %s", path, rejects.count, rejects.reasons)
            return BatchResult(
                str(path),
                kind,
                fmt,
                loaded,
                duplicates,
                rejects.count,
                False,
                seconds,
                batch_id,
                checksum,
            )
        finally:
            rejects.close()


def _load_events(
    pg: psycopg.Connection,
    cur: psycopg.Cursor,
    path: Path,
    fmt: str,
    caller: str | None,
    progress: Callable[[int], None] | None,
    rejects: RejectSpool,
    batch: str,
    columns: str,
) -> tuple[int, int]:
    """(rows loaded, duplicates): optimistic direct COPY, merge through a temp table on conflict."""
    try:
        with pg.transaction():  # savepoint: a duplicate event_id undoes only this attempt
            source = Source(path, rejects.add, progress)
            parsed = _parse("api_events", fmt, source, rejects.add, batch, caller)
            return _copy_lines(cur, "raw.api_events", parsed, dedupe=True)
    except psycopg.errors.UniqueViolation:
        log.info("%s overlaps loaded events: merging through a staging table", path)
    rejects.reset()
    cur.execute(
        "create temp table if not exists onramp_stage_events"
        " (like raw.api_events including defaults) on commit drop"
    )
    cur.execute("truncate onramp_stage_events")
    source = Source(path, rejects.add, None)  # the bar already covered this file once
    staged, _ = _copy_lines(
        cur, "onramp_stage_events", _parse("api_events", fmt, source, rejects.add, batch, caller)
    )
    cur.execute(
        f"insert into raw.api_events ({columns}) select {columns} from onramp_stage_events"
        " on conflict (event_id) do nothing"
    )
    loaded = cur.rowcount
    return loaded, staged - loaded


def _record_failure(
    pg: psycopg.Connection, kind: str, path: Path, fmt: str, checksum: str, started: float
) -> None:
    """Leave a trace of a load that failed (its rows are gone with the rolled-back transaction)."""
    try:
        with pg.transaction(), pg.cursor() as cur:
            cur.execute(
                "insert into raw.load_batches"
                " (kind, path, checksum, format, status, finished_at, seconds)"
                " values (%s, %s, %s, %s, 'failed', clock_timestamp(), %s)",
                (kind, str(path.resolve()), checksum, fmt, time.perf_counter() - started),
            )
    except psycopg.Error:
        log.warning("could not record the failed load of %s", path)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise LoadError(f"no such file: {path}")
    if not path.is_file():
        raise LoadError(f"not a file: {path}")


def _resolve_format(kind: str, path: Path, fmt: str | None) -> str:
    fmt = (fmt or "auto").strip().lower()
    if fmt == "auto":
        return detect_format(kind, path)
    if fmt not in FORMATS[kind]:
        allowed = ", ".join(FORMATS[kind])
        raise LoadError(f"unknown format {fmt!r} for {kind.replace('_', '-')}: use auto, {allowed}")
    return fmt


def load_paths(
    engine: sa.Engine,
    kind: str,
    paths: Iterable[str | Path],
    fmt: str = "auto",
    caller: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[BatchResult]:
    """Load each file as its own batch. Every path and the format are checked before any load.

    `progress(n)` receives the number of file bytes read since its last call.
    """
    kind = normalise_kind(kind)
    paths = [Path(p) for p in paths]
    for path in paths:
        _check_path(path)
    try:
        parsers.validate_caller(caller)
    except ValueError as exc:
        raise LoadError(str(exc)) from exc
    formats = [_resolve_format(kind, path, fmt) for path in paths]
    ensure_raw_schema(engine)  # cheap when it exists; callers need not remember it
    return [
        load_file(engine, kind, path, f, caller, progress)
        for path, f in zip(paths, formats, strict=True)
    ]


def load_manifest_dir(
    engine: sa.Engine, directory: str | Path, progress: Callable[[int], None] | None = None
) -> list[BatchResult]:
    """Load every file a manifest.json lists: developers, endpoints, incidents, then events."""
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise LoadError(f"no manifest.json in {directory}")
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        entries = list(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LoadError(f"{manifest_path} is not a valid manifest: {exc}") from exc
    order = {kind: i for i, kind in enumerate(KINDS)}
    planned = []
    for entry in entries:
        kind = normalise_kind(str(entry["kind"]))
        planned.append((order[kind], kind, entry))
    planned.sort(key=lambda item: item[0])  # stable: file order kept within a kind
    results: list[BatchResult] = []
    for _, kind, entry in planned:
        results += load_paths(
            engine,
            kind,
            [directory / entry["path"]],
            fmt=entry.get("format") or "auto",
            caller=entry.get("caller"),
            progress=progress,
        )
    return results
