"""Moesif exports and access logs become canonical JSON lines first, which Spark then reads.

Why canonical files rather than Arrow batches from the parsers: the Python parsers (ingest.moesif,
ingest.access_log) already stream, validate, reject with line numbers and derive event ids; what
they produce is written to a temporary JSONL file in constant memory and read by the same Spark
path as any canonical file, so dedupe, the anti-join against loaded events and the write into
raw.api_events exist once. Arrow batches would need many small DataFrames unioned on the driver
(or a staging table) and a second code path for the same rules. The cost is one extra text
round trip, small beside the parsing the formats need anyway (see bench/load.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ingest import parsers
from ingest.event_rows import EVENT_COLUMNS
from ingest.sources import RejectFn, Source

_UNESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def _copy_value(field: str) -> str | None:
    """A COPY text field back to its value (an empty field is NULL)."""
    if field == "":
        return None
    if "\\" not in field:
        return field
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), field)


def write_canonical_events(
    path: Path, fmt: str, caller: str | None, reject: RejectFn, out: Path, writing: bool = False
) -> tuple[int, int]:
    """Parse `path` (moesif or combined) into canonical JSON lines at `out`.

    Returns (events written, bytes held back): with `writing`, the parser holds back the
    unfinished end of a file still being written. Rejected lines go to `reject` with their line
    number in the original file. The event id the parser derived is written out, so Spark keeps
    it rather than hashing again.
    """
    source = Source(path, reject, writing=writing)
    pieces = parsers.parse("api_events", fmt, source, reject, "0", caller)
    columns = list(next(pieces))
    extras_at = columns.index("extras")
    names = [(i, name) for i, name in enumerate(columns) if name in EVENT_COLUMNS]
    written = 0
    with open(out, "w", encoding="utf-8") as fh:
        for piece in pieces:
            text = piece[0] if type(piece) is tuple else piece
            for line in text.split("\n"):
                if not line:
                    continue
                fields = line.split("\t")
                row = {}
                extras = _copy_value(fields[extras_at])
                if extras:
                    row.update(json.loads(extras))
                for i, name in names:
                    row[name] = _copy_value(fields[i])
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                written += 1
    return written, source.held_back
