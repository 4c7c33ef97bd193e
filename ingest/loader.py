"""Load raw files into raw.* with PostgreSQL COPY: one transaction per file, idempotent, streamed.

Why it is shaped like this:
- Atomic: the batch row, the loaded rows and the rejects of a file are written in one transaction,
  so a crash (or a kill) mid-file leaves nothing of that file behind and a rerun loads it whole.
- Idempotent twice over: a file whose sha256 was loaded before is skipped, and an API event whose
  event_id is already in raw.api_events adds nothing.
- Fast: the parsers turn whole blocks of regular rows into COPY text at C speed (fast_paths.py),
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
- Per file: a file that cannot be loaded at all is a failed batch with its reason and the
  others still load; a file still being written loads without its unfinished end (a `partial`
  batch); rejects, their text and gzip output are capped (docs/raw-formats.md).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from ingest import parsers
from ingest.access_log import COMBINED, validate_caller
from ingest.copy_encoding import COPY_OPTIONS
from ingest.csv_format import MissingColumns
from ingest.paths import inside
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
# Per file: rejects stored (all are counted), raw text stored per reject, and raw text stored in
# all; past the last one a reject keeps only a short preview. A file of garbage stays bounded.
MAX_STORED_REJECTS = 100_000
MAX_REJECT_TEXT = 1 << 20
MAX_REJECT_TEXT_TOTAL = 64 << 20
REJECT_PREVIEW = 200
# A file changed less than this many seconds ago may still be being written (the landing sensor
# waits as long): its unfinished end is held back until a later load finds it complete.
SETTLE_SECONDS = 10.0


class LoadError(OnrampError):
    """A load cannot start (unknown kind, format or caller rule, a path that is not a file)."""


class FileFailed(LoadError):
    """One file could not be loaded at all (unreadable, empty, no known format, wrong header,
    refused by the server). It is recorded as a failed batch with its reason; `result` says so."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__(result.error or "failed")
        self.result = result


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
    error: str | None = None  # why the file failed as a whole (status 'failed'); else None
    notes: tuple[str, ...] = ()  # limits hit, lines held back: one line each for the summary

    @property
    def failed(self) -> bool:
        return self.error is not None


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
    head = Source(path).head()
    if not head.strip():
        raise LoadError(f"{path} is empty")
    sniffed = _sniff(kind, head)
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
    if kind == "api_events" and COMBINED.match(first):
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
        self.stored = 0
        self.text_chars = 0
        self.reasons: dict[str, int] = {}
        self._file = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8")

    def add(self, lineno: int, reason: str, raw: str) -> None:
        self.count += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if self.stored >= MAX_STORED_REJECTS:
            return
        self.stored += 1
        limit = MAX_REJECT_TEXT if self.text_chars < MAX_REJECT_TEXT_TOTAL else REJECT_PREVIEW
        text = raw[:limit].replace("\x00", "\ufffd")
        self.text_chars += len(text)
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
        esc = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        esc = esc.replace("\r", "\\r")
        self._file.write(f"{self.batch}\t{lineno}\t{reason}\t{esc}\n")

    def notes(self) -> list[str]:
        """One line per limit this file hit."""
        out = []
        if self.count > self.stored:
            out.append(
                f"{self.count:,} rejects: only the first {self.stored:,} are stored in"
                " raw.load_rejects (all are counted)"
            )
        if self.text_chars > MAX_REJECT_TEXT_TOTAL:
            out.append(
                f"reject text passed {MAX_REJECT_TEXT_TOTAL:,} characters: later rejects keep"
                f" only their first {REJECT_PREVIEW} characters"
            )
        return out

    def reset(self) -> None:
        self.count = self.stored = self.text_chars = 0
        self.reasons.clear()
        self._file.seek(0)
        self._file.truncate()

    def copy_into(self, cur: psycopg.Cursor) -> None:
        if not self.stored:
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
    sql = f"copy {table} ({', '.join(columns)}) from stdin {COPY_OPTIONS}"
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


def _columns(kind: str) -> str:
    return ", ".join(parsers.copy_columns(kind))


def load_file(
    engine: sa.Engine,
    kind: str,
    path: str | Path,
    fmt: str = "auto",
    caller: str | None = None,
    progress: Callable[[int], None] | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> BatchResult:
    """Load one file in one transaction; see the module docstring for the guarantees.

    A file changed less than `settle_seconds` ago may still be being written: a last line
    without its line end (or a gzip stream that stops) is not loaded, the batch is `partial`
    and a later load of the completed file adds the rest.
    """
    kind = normalise_kind(kind)
    path = Path(path)
    _check_path(path)
    fmt = _resolve_format(kind, path, fmt)
    started = time.perf_counter()
    writing = time.time() - path.stat().st_mtime < settle_seconds
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
            return _load_in_transaction(pg, kind, path, fmt, caller, tally, started, writing)
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
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = f"the server refused it, nothing of it was kept: {first}"
            raise FileFailed(_record_failure(engine, kind, path, fmt, started, reason)) from exc
        except MissingColumns as exc:
            raise FileFailed(_record_failure(engine, kind, path, fmt, started, str(exc))) from exc
        except OSError as exc:
            reason = f"cannot read it: {exc.strerror or exc}"
            raise FileFailed(_record_failure(engine, kind, path, fmt, started, reason)) from exc
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
    writing: bool = False,
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
            source = Source(path, rejects.add, progress, READ_CHUNK, digest, writing)
            if kind != "api_events":
                loaded, _ = _copy_lines(
                    cur, f"raw.{kind}", parsers.parse(kind, fmt, source, rejects.add, batch, caller)
                )
            else:
                loaded, duplicates = _load_events(
                    pg, cur, source, fmt, caller, rejects, batch, columns
                )
            checksum = digest.hexdigest()
            _check_not_loaded(cur, kind, checksum)
            rejects.copy_into(cur)
            notes = source.notes + rejects.notes()
            if source.held_back:
                # Not 'loaded': the same bytes, once settled, must load again (with their end).
                notes.append(
                    "changed moments ago and its end is unfinished: the last"
                    f" {source.held_back:,} bytes are held back until the file is complete"
                )
            for note in notes:
                log.warning("%s: %s", path, note)
            seconds = time.perf_counter() - started
            cur.execute(
                "update raw.load_batches set status = %s, checksum = %s, rows_loaded = %s,"
                " rows_duplicate = %s, rows_rejected = %s, finished_at = clock_timestamp(),"
                " seconds = %s"
                " where batch_id = %s",
                (
                    "partial" if source.held_back else "loaded",
                    checksum,
                    loaded,
                    duplicates,
                    rejects.count,
                    seconds,
                    batch_id,
                ),
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
                notes=tuple(notes),
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
            parsed = parsers.parse("api_events", fmt, source, rejects.add, batch, caller)
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
    again = Source(source.path, rejects.add, None, READ_CHUNK, writing=source.writing)
    staged, _ = _copy_lines(
        cur,
        "onramp_stage_events",
        parsers.parse("api_events", fmt, again, rejects.add, batch, caller),
    )
    source.held_back, source.notes = again.held_back, again.notes
    cur.execute(
        f"insert into raw.api_events ({columns}) select {columns} from onramp_stage_events"
        " on conflict (event_id) do nothing"
    )
    loaded = cur.rowcount
    return loaded, staged - loaded


def _record_failure(
    engine: sa.Engine, kind: str, path: Path, fmt: str, started: float, reason: str
) -> BatchResult:
    """Record a file that failed as a whole (its rows, if any, went with the rolled-back
    transaction) as a failed batch with its reason, and say so in one log line."""
    seconds = time.perf_counter() - started
    batch_id = None
    try:
        checksum = file_checksum(path)
    except OSError:
        checksum = ""
    try:
        with engine.begin() as conn:
            batch_id = conn.execute(
                sa.text(
                    "insert into raw.load_batches"
                    " (kind, path, checksum, format, status, finished_at, seconds, error)"
                    " values (:kind, :path, :checksum, :format, 'failed', clock_timestamp(),"
                    " :seconds, :error) returning batch_id"
                ),
                {
                    "kind": kind,
                    "path": str(path.resolve()),
                    "checksum": checksum,
                    "format": fmt,
                    "seconds": seconds,
                    "error": reason,
                },
            ).scalar_one()
    except sa.exc.SQLAlchemyError:
        log.warning("could not record the failed load of %s", path)
    # info, not warning: the command line and the Dagster asset each report the failed files once.
    log.info("%s not loaded: %s", path, reason)
    return BatchResult(
        str(path), kind, fmt, 0, 0, 0, False, seconds, batch_id, checksum, error=reason
    )


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
    settle_seconds: float = SETTLE_SECONDS,
) -> list[BatchResult]:
    """Load each file as its own batch; the arguments and paths are checked before any load.

    A file that cannot be loaded at all (empty, unreadable, of no known format, a wrong header)
    does not stop the others: it is recorded as a failed batch and its result carries the
    reason (`error`). A file changed less than `settle_seconds` ago loads without its
    unfinished end (see load_file). `progress(n)` receives the number of file bytes read since
    its last call.
    """
    kind = normalise_kind(kind)
    paths = [Path(p) for p in paths]
    for path in paths:
        _check_path(path)
    try:
        validate_caller(caller)
    except ValueError as exc:
        raise LoadError(str(exc)) from exc
    fmt = (fmt or "auto").strip().lower()
    if fmt != "auto":
        _resolve_format(kind, paths[0] if paths else Path("."), fmt)  # an unknown format raises
    ensure_raw_schema(engine)  # cheap when it exists; callers need not remember it
    results = []
    for path in paths:
        started = time.perf_counter()
        try:
            file_fmt = _resolve_format(kind, path, fmt)
        except (LoadError, OSError) as exc:
            reason = str(exc) if isinstance(exc, LoadError) else f"cannot read it: {exc}"
            results.append(_record_failure(engine, kind, path, "unknown", started, reason))
            _finish_progress(path, progress)
            continue
        try:
            results.append(
                load_file(engine, kind, path, file_fmt, caller, progress, settle_seconds)
            )
        except FileFailed as exc:
            results.append(exc.result)
    return results


def _finish_progress(path: Path, progress: Callable[[int], None] | None) -> None:
    if progress is not None:
        try:
            progress(path.stat().st_size)
        except OSError:
            pass


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
        if not inside(directory, directory / entry["path"]):
            raise LoadError(f"{manifest_path} lists {entry['path']!r}, which is outside its folder")
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
