"""Load raw files into raw.* with PostgreSQL COPY: one transaction per file, idempotent, streamed.

Why it is shaped like this:
- Atomic: the batch row, the loaded rows and the rejects of a file are written in one transaction,
  so a crash (or a kill) mid-file leaves nothing of that file behind and a rerun loads it whole.
- Idempotent twice over: a file whose sha256 was loaded before is skipped, and an API event whose
  event_id is already in raw.api_events adds nothing.
- Fast: the parsers turn whole blocks of regular rows into COPY text at C speed (parsers.py),
  the server parses one small piece while Python prepares the next, the checksum is taken on the
  same read (FileDigest), and events are first COPYed straight
  into raw.api_events under a savepoint, with events repeated within the file dropped on the way
  (RecentIds). Only when that still hits a duplicate event_id (an event loaded before, or repeated
  from far back) is the file parsed again into a temporary table and merged with
  `on conflict do nothing`, which costs about twice as much. Measured alternatives that were
  slower: always staging (INSERT ... ON CONFLICT is about 2x a COPY), probing each chunk's ids
  before its COPY (about +60%), and letting PostgreSQL parse the JSON (jsonb input is slower than
  the Python fast path, and it runs on the core the COPY already saturates).
- Flat memory: files are read in 64 KB chunks, rejects spool to disk, nothing is queued.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from ingest import parsers
from ingest.schema import ensure_raw_schema
from ingest.sources import FileDigest, Source
from onramp.errors import OnrampError

log = logging.getLogger(__name__)

KINDS = ("developers", "endpoints", "incidents", "api_events")  # also the manifest load order
FORMATS = {
    "api_events": ("jsonl", "csv", "moesif", "combined"),
    "developers": ("jsonl", "csv"),
    "incidents": ("jsonl", "csv"),
    "endpoints": ("jsonl", "csv"),
}
# Read and write in small pieces. PostgreSQL parses what sits in the socket buffer while Python
# parses the next block, so each piece must take Python less time than that buffer (~200 KB) takes
# the server. A writer thread with 1 MB pieces was slower: the C regex calls hold the GIL for a
# whole block, so the writer thread, and with it the server, waited (measured in bench/load.py).
READ_CHUNK = 64 << 10
COPY_WRITE_CHARS = 64 << 10
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
    """The raw table a kind names (`api-events`, `events` -> api_events); LoadError if none."""
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
    """sha256 of the file's bytes: a file loaded before is skipped."""
    return FileDigest(path).hexdigest()


class _LoadedBefore(Exception):
    """The file's bytes were loaded before: the transaction is rolled back, the load skipped."""

    def __init__(self, batch_id: int, checksum: str) -> None:
        super().__init__(batch_id)
        self.batch_id = batch_id
        self.checksum = checksum


def _check_not_loaded(cur: psycopg.Cursor, kind: str, checksum: str) -> None:
    # Two loads of the same bytes at once: the second waits here, then sees the first and skips.
    cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"onramp.load:{kind}:{checksum}",))
    cur.execute(
        "select batch_id from raw.load_batches"
        " where kind = %s and checksum = %s and status = 'loaded'",
        (kind, checksum),
    )
    previous = cur.fetchone()
    if previous is not None:
        raise _LoadedBefore(previous[0], checksum)


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
class RecentIds:
    """Drops events whose event_id was already sent in this file, within a recent window.

    Files often repeat an event a little later (a retried delivery). Without this, one repeat
    fails the direct COPY and the whole file is merged through a staging table at about twice
    the cost. Memory stays bounded: the ids of the last chunks, WINDOW ids at most, are kept. A
    repeat from further back (or of an event loaded before) still takes the merge path. The
    common chunk, without a repeat, costs two set operations per id.
    """

    WINDOW = 250_000  # ids; the sample data repeats events up to ~3 days (~185k lines) later

    def __init__(self, column: int) -> None:
        # The id is the `column`-th field of a COPY line (tab separated, escaped consistently).
        skip = r"[^\t\n]*+\t" * column
        self._ids = re.compile(rf"{skip}([^\t\n]*+)[^\n]*+\n").findall
        self.seen: set[str] = set()
        self.chunks: deque[list[str]] = deque()  # the ids in `seen`, oldest chunk first
        self.size = 0
        self.dropped = 0

    def filter(self, chunk: str, ids: list[str] | None = None) -> tuple[str, int]:
        """(`chunk` without the lines whose id was seen before, lines kept).

        `ids` are the chunk's event ids, one per line, when the parser already has them.
        """
        if ids is None:
            ids = self._ids(chunk)
        seen = self.seen
        if seen.isdisjoint(ids):
            before = len(seen)
            seen.update(ids)
            if len(seen) - before == len(ids):
                self._remember(ids)
                return chunk, len(ids)
            seen.difference_update(ids)  # a repeat inside the chunk: none of these was seen
        lines = chunk.split("\n")  # not splitlines(): values may hold other line breaks
        lines.pop()
        kept, kept_ids = [], []
        for line, event_id in zip(lines, ids, strict=True):
            if event_id in seen:
                self.dropped += 1
                continue
            seen.add(event_id)
            kept.append(line)
            kept_ids.append(event_id)
        self._remember(kept_ids)
        return ("\n".join(kept) + "\n" if kept else ""), len(kept)

    def _remember(self, ids: list[str]) -> None:
        self.chunks.append(ids)
        self.size += len(ids)
        while self.size > self.WINDOW:
            old = self.chunks.popleft()
            self.seen.difference_update(old)
            self.size -= len(old)


def _copy_lines(
    cur: psycopg.Cursor, table: str, parsed: Iterable[Any], dedupe: bool = False
) -> tuple[int, int]:
    """COPY a parser's output into `table`; returns (rows sent, repeats dropped).

    A parser yields its COPY column order first, then COPY text pieces: single rows, long
    validated runs, or (text, event ids) pairs for runs whose ids it already has. Pieces are
    written in writes of about COPY_WRITE_CHARS, so the server parses one while Python prepares
    the next. With `dedupe`, events repeated within the file are dropped before they reach the
    server (see RecentIds).
    """
    it = iter(parsed)
    columns = next(it, None)
    if columns is None:
        return 0, 0
    recent = RecentIds(list(columns).index("event_id")) if dedupe else None
    sent = 0
    buf: list[str] = []
    ids: list[str] | None = []  # the buffer's event ids, while every piece came with them
    size = 0
    sql = f"copy {table} ({', '.join(columns)}) from stdin {parsers.COPY_OPTIONS}"
    with cur.copy(sql) as copy:
        for piece in chain(it, [None]):
            if piece is not None:
                if type(piece) is tuple:
                    piece, piece_ids = piece
                    if ids is not None:
                        ids += piece_ids
                else:
                    ids = None
                buf.append(piece)
                size += len(piece)
                if size < COPY_WRITE_CHARS:
                    continue
            if not buf:
                break
            chunk = "".join(buf) if len(buf) > 1 else buf[0]
            if recent is not None:
                chunk, rows = recent.filter(chunk, ids)
            else:
                rows = chunk.count("\n")
            buf.clear()
            ids = []
            size = 0
            if rows:
                copy.write(chunk)
                sent += rows
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
    read = [0]  # file bytes reported to `progress`, so a skipped file still ends the bar

    def tally(size: int) -> None:
        read[0] += size
        if progress is not None:
            progress(size)

    raw_conn = engine.raw_connection()
    try:
        pg: psycopg.Connection = raw_conn.driver_connection  # type: ignore[assignment]
        pg.rollback()
        saved_autocommit = pg.autocommit
        pg.autocommit = True
        try:
            return _load_in_transaction(pg, kind, path, fmt, caller, tally, started)
        except _LoadedBefore as skip:
            log.info("skipping %s: loaded before as batch %s", path, skip.batch_id)
            tally(max(0, path.stat().st_size - read[0]))
            return BatchResult(
                str(path),
                kind,
                fmt,
                0,
                0,
                0,
                True,
                time.perf_counter() - started,
                skip.batch_id,
                skip.checksum,
            )
        except psycopg.Error as exc:
            _record_failure(pg, kind, path, fmt, started)
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
    started: float,
) -> BatchResult:
    """The load; raises _LoadedBefore (rolling everything back) when the bytes were loaded before.

    The checksum is taken while the parser reads the file, so whether these bytes were loaded
    before is known at the end (or at the first event_id conflict, which a reload always hits).
    """
    with pg.transaction(), pg.cursor() as cur:
        cur.execute("set local timezone = 'UTC'")
        cur.execute(
            "select 1 from raw.load_batches where kind = %s and path = %s and status = 'loaded'",
            (kind, str(path.resolve())),
        )
        if cur.fetchone() is not None:
            # Most likely a rerun over the same files: hash first, so an unchanged file is
            # skipped without being parsed.
            _check_not_loaded(cur, kind, file_checksum(path))
        cur.execute(
            "insert into raw.load_batches (kind, path, checksum, format)"
            " values (%s, %s, '', %s) returning batch_id",
            (kind, str(path.resolve()), fmt),
        )
        batch_id = cur.fetchone()[0]
        batch = str(batch_id)
        rejects = RejectSpool(batch_id)
        digest = FileDigest(path)
        try:
            columns = _columns(kind)
            duplicates = 0
            source = Source(path, rejects.add, progress, READ_CHUNK, digest)
            if kind != "api_events":
                loaded, _ = _copy_lines(
                    cur, f"raw.{kind}", _parse(kind, fmt, source, rejects.add, batch, caller)
                )
            else:
                loaded, duplicates = _load_events(
                    pg, cur, source, fmt, caller, rejects, batch, columns
                )
            checksum = digest.hexdigest()
            _check_not_loaded(cur, kind, checksum)
            rejects.copy_into(cur)
            seconds = time.perf_counter() - started
            cur.execute(
                "update raw.load_batches set status = 'loaded', checksum = %s, rows_loaded = %s,"
                " rows_duplicate = %s, rows_rejected = %s, finished_at = clock_timestamp(),"
                " seconds = %s"
                " where batch_id = %s",
                (checksum, loaded, duplicates, rejects.count, seconds, batch_id),
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
    source: Source,
    fmt: str,
    caller: str | None,
    rejects: RejectSpool,
    batch: str,
    columns: str,
) -> tuple[int, int]:
    """(rows loaded, duplicates): optimistic direct COPY, merge through a temp table on conflict."""
    try:
        with pg.transaction():  # savepoint: a duplicate event_id undoes only this attempt
            parsed = _parse("api_events", fmt, source, rejects.add, batch, caller)
            return _copy_lines(cur, "raw.api_events", parsed, dedupe=True)
    except psycopg.errors.UniqueViolation:
        # Reloading the same file always lands here: finish its checksum before merging.
        _check_not_loaded(cur, "api_events", source.digest.hexdigest())
        log.info("%s overlaps loaded events: merging through a staging table", source.path)
    rejects.reset()
    cur.execute(
        "create temp table if not exists onramp_stage_events"
        " (like raw.api_events including defaults) on commit drop"
    )
    cur.execute("truncate onramp_stage_events")
    # The progress bar already covered this file once.
    again = Source(source.path, rejects.add, None, READ_CHUNK)
    staged, _ = _copy_lines(
        cur, "onramp_stage_events", _parse("api_events", fmt, again, rejects.add, batch, caller)
    )
    cur.execute(
        f"insert into raw.api_events ({columns}) select {columns} from onramp_stage_events"
        " on conflict (event_id) do nothing"
    )
    loaded = cur.rowcount
    return loaded, staged - loaded


def _record_failure(
    pg: psycopg.Connection, kind: str, path: Path, fmt: str, started: float
) -> None:
    """Leave a trace of a load that failed (its rows are gone with the rolled-back transaction)."""
    try:
        checksum = file_checksum(path)
        with pg.transaction(), pg.cursor() as cur:
            cur.execute(
                "insert into raw.load_batches"
                " (kind, path, checksum, format, status, finished_at, seconds)"
                " values (%s, %s, %s, %s, 'failed', clock_timestamp(), %s)",
                (kind, str(path.resolve()), checksum, fmt, time.perf_counter() - started),
            )
    except (psycopg.Error, OSError):
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
