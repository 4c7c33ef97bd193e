"""CSV files: records that may span lines, the header, events and reference tables."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from ingest.copy_encoding import Reject, needs_escape
from ingest.event_rows import EVENT_COLUMN_SET, EVENT_COLUMNS, event_line
from ingest.fast_paths import CsvFast, LineCursor, copy_order, fast_usable
from ingest.reference_rows import TABLE_SPECS, table_copy_columns, table_line
from ingest.sources import RejectFn, Source

MAX_CONTINUATION_LINES = 100


class MissingColumns(Exception):
    """A CSV header without a column every row needs: the wrong file, not bad rows."""


def read_csv_record(
    lineno: int, line: str, it: Iterator[tuple[int, str]], reject: RejectFn
) -> tuple[list[str] | None, str, bool, list[tuple[int, str]] | None]:
    """Parse one CSV record starting at `line`: (fields or None, raw text, escape, pushback).

    A quoted field may span lines; an opening quote that never closes within
    MAX_CONTINUATION_LINES lines rejects only its own line ("broken CSV quoting") and the lines
    read ahead come back as `pushback`, so one stray quote cannot swallow the rest of the file.
    """
    if '"' not in line:
        return line.split(","), line, needs_escape(line), None
    parts = [line]
    if line.count('"') % 2:
        consumed: list[tuple[int, str]] = []
        closed = False
        while len(consumed) < MAX_CONTINUATION_LINES:
            nxt = next(it, None)
            if nxt is None:
                break
            consumed.append(nxt)
            parts.append(nxt[1])
            if nxt[1].count('"') % 2:
                closed = True
                break
        if not closed:
            reject(lineno, "broken CSV quoting", line)
            return None, line, False, consumed
    raw = "\n".join(parts)
    try:
        fields = next(csv.reader([p + "\n" for p in parts], strict=True))
    except (csv.Error, StopIteration):
        reject(lineno, "broken CSV quoting", raw)
        return None, raw, False, None
    return fields, raw, len(parts) > 1 or needs_escape(raw), None


def csv_rows(
    lines: Iterable[tuple[int, str]], reject: RejectFn
) -> Iterator[tuple[int, list[str], str, bool]]:
    """(line number, fields, raw text, escape needed) per CSV record; the header comes first."""
    it = iter(lines)
    while True:
        pushback = None
        for lineno, line in it:
            if not line:
                continue
            fields, raw, escape, pushback = read_csv_record(lineno, line, it, reject)
            if pushback:
                break
            if fields is not None:
                yield lineno, fields, raw, escape
        if not pushback:
            return
        it = chain(pushback, it)


def csv_header(rows: Iterator[tuple[int, list[str], str, bool]]) -> list[str] | None:
    """The header record's column names, lowercased; None for an empty file."""
    first = next(rows, None)
    if first is None:
        return None
    return [name.strip().lower() for name in first[1]]


def parse_csv_events(
    source: Source, reject: RejectFn, batch: str, caller: str | None = None
) -> Iterator[Any]:
    """Yields the COPY column order first, then COPY text (single rows or validated runs)."""
    cursor = LineCursor(source)
    header: list[str] | None = None
    for lineno, line in cursor:
        if line:
            fields, _raw, _escape, pushback = read_csv_record(lineno, line, cursor, reject)
            cursor.pushback[:0] = pushback or []
            if fields is not None:
                header = [name.strip().lower() for name in fields]
                break
    if header is None:
        return
    for required in ("developer_id", "occurred_at"):
        if required not in header:
            raise MissingColumns(f"{source.path}: no {required} column in the CSV header")
    order, perm = copy_order(header)
    yield (*order, "extras", "batch_id")
    width = len(header)
    index = [header.index(c) if c in header else -1 for c in EVENT_COLUMNS]
    extra_index = [(i, name) for i, name in enumerate(header) if name not in EVENT_COLUMN_SET]
    fast = CsvFast(header, batch) if fast_usable(header) else None
    while True:
        if fast is not None:
            segment = cursor.run(fast.match)
            if segment:
                yield fast.convert(segment)
                continue
        item = next(cursor, None)
        if item is None:
            return
        lineno, line = item
        if not line:
            continue
        fields, raw, escape, pushback = read_csv_record(lineno, line, cursor, reject)
        if pushback:
            cursor.pushback[:0] = pushback
        if fields is None:
            continue
        if len(fields) != width:
            reject(lineno, "wrong number of fields", raw)
            continue
        values, extras = _pick(fields, index, extra_index)
        try:
            yield event_line(values, extras, escape, batch, perm=perm)
        except Reject as exc:
            reject(lineno, exc.reason, raw)


def _pick(
    fields: list[str], index: list[int], extra_index: list[tuple[int, str]]
) -> tuple[list[str | None], dict[str, str] | None]:
    """A record's values in column order (None where the file lacks the column) and its
    non-empty unknown columns (extras)."""
    values = [fields[i] if i >= 0 else None for i in index]
    extras = {name: fields[i] for i, name in extra_index if fields[i] != ""} or None
    return values, extras


def parse_csv_table(kind: str, source: Source, reject: RejectFn, batch: str) -> Iterator[str]:
    """Yields the COPY column order of a reference table, then one COPY line per CSV row."""
    spec = TABLE_SPECS[kind]
    yield table_copy_columns(kind)
    rows = csv_rows(source.lines(), reject)
    header = csv_header(rows)
    if header is None:
        return
    key = spec[0][0]
    if key not in header:
        raise MissingColumns(f"{source.path}: no {key} column in the CSV header")
    width = len(header)
    names = [name for name, _ in spec]
    index = [header.index(n) if n in header else -1 for n in names]
    extra_index = [(i, name) for i, name in enumerate(header) if name not in names]
    for lineno, fields, raw, _escape in rows:
        if len(fields) != width:
            reject(lineno, "wrong number of fields", raw)
            continue
        values, extras = _pick(fields, index, extra_index)
        try:
            yield table_line(spec, values, extras, batch, lineno)
        except Reject as exc:
            reject(lineno, exc.reason, raw)
