"""JSON lines: canonical events (with the block fast path) and reference tables."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any

from ingest.copy_encoding import Reject
from ingest.event_rows import (
    EVENT_COLUMN_SET,
    EVENT_COPY_COLUMNS,
    JSON_ERRORS,
    json_event,
    loads,
)
from ingest.fast_paths import JsonLines
from ingest.reference_rows import TABLE_SPECS, table_copy_columns, table_line
from ingest.sources import RejectFn, Source


def json_objects(
    source: Source, reject: RejectFn
) -> Iterator[tuple[int, dict[str, Any], str, bool]]:
    """(line number, object, raw line, escape needed) per JSON line; blank lines skipped."""
    load = loads  # a local name: this runs once per line
    for lineno, line in source.lines():
        try:
            obj = load(line)
        except JSON_ERRORS:
            if not line.strip():
                continue
            reject(lineno, "malformed JSON", line)
            continue
        if type(obj) is not dict:
            reject(lineno, "not a JSON object", line)
            continue
        yield lineno, obj, line, "\\" in line or "\x00" in line


def parse_jsonl_events(
    source: Source, reject: RejectFn, batch: str, caller: str | None = None
) -> Iterator[Any]:
    """Yields the COPY column order first, then COPY text (single rows or whole blocks).

    The keys of the first JSON object in the first block decide the fast path's key order.
    """
    blocks = source.counted_blocks()
    head = next(blocks, None)
    fast = learn_json_lines(head[1], batch) if head is not None else None
    yield fast.columns if fast is not None else EVENT_COPY_COLUMNS
    if head is None:
        return
    for first, text, lines in chain([head], blocks):
        if fast is not None:
            yield from fast.block(first, text, reject, batch, lines)
            continue
        for lineno, line in enumerate(text.split("\n")[:-1], first):
            row = json_event(lineno, line, None, reject, batch)
            if row is not None:
                yield row


def learn_json_lines(text: str, batch: str) -> JsonLines | None:
    """The fast path for the key order of the first object in `text`, if it has the keys."""
    for line in text.split("\n", 1000)[:1000]:
        try:
            obj = loads(line)
        except JSON_ERRORS:
            continue
        if type(obj) is not dict:
            continue
        keys = [key for key in obj if key in EVENT_COLUMN_SET]
        if not JsonLines.usable(keys):
            return None
        compact = JsonLines(keys, batch, spaced=False)
        return compact if compact.run(line + "\n").end() else JsonLines(keys, batch)
    return None


def parse_jsonl_table(kind: str, source: Source, reject: RejectFn, batch: str) -> Iterator[str]:
    """Yields the COPY column order of a reference table, then one COPY line per JSON object."""
    spec = TABLE_SPECS[kind]
    yield table_copy_columns(kind)
    names = [name for name, _ in spec]
    known = set(names)
    for lineno, obj, line, _escape in json_objects(source, reject):
        values = [obj.get(n) for n in names]
        extras = {k: v for k, v in obj.items() if k not in known} or None
        try:
            yield table_line(spec, values, extras, batch, lineno)
        except Reject as exc:
            reject(lineno, exc.reason, line)
