"""Which parser reads which (kind, format), and the COPY columns each kind is written with.

Each format lives in its own module (csv_format, jsonl_format, moesif, access_log; the block fast
paths in fast_paths). Every parser yields its COPY column order first, then COPY text pieces,
and hands bad rows to the reject callback; see loader._copy_lines for how they are written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingest.access_log import parse_combined_events
from ingest.csv_format import parse_csv_events, parse_csv_table
from ingest.event_rows import EVENT_COPY_COLUMNS
from ingest.jsonl_format import parse_jsonl_events, parse_jsonl_table
from ingest.moesif import parse_moesif_events
from ingest.reference_rows import table_copy_columns
from ingest.sources import RejectFn, Source

EVENT_PARSERS = {
    "csv": parse_csv_events,
    "jsonl": parse_jsonl_events,
    "moesif": parse_moesif_events,
    "combined": parse_combined_events,
}


def parse(
    kind: str, fmt: str, source: Source, reject: RejectFn, batch: str, caller: str | None
) -> Iterator[Any]:
    """The parser for `kind` in format `fmt`, reading `source` (formats were checked before)."""
    if kind == "api_events":
        return EVENT_PARSERS[fmt](source, reject, batch, caller)
    if fmt == "csv":
        return parse_csv_table(kind, source, reject, batch)
    return parse_jsonl_table(kind, source, reject, batch)


def copy_columns(kind: str) -> tuple[str, ...]:
    """The COPY column list of raw.<kind> as the general path writes it."""
    return EVENT_COPY_COLUMNS if kind == "api_events" else table_copy_columns(kind)
