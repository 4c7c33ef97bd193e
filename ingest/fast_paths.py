"""Fast paths for regular event files: whole blocks of rows validated by one regex, in C.

A row a pattern refuses is not necessarily bad: it goes through the general path
(`event_rows.event_line`), which converts it or rejects it with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from operator import itemgetter

from ingest.event_rows import EVENT_COLUMN_SET, EVENT_COLUMNS, json_event
from ingest.sources import RejectFn, Source

# Whole runs of CSV rows are validated by one regex match over a block of text and made into COPY
# text with str.replace, so the common row costs no Python bytecode at all. The patterns accept
# only values PostgreSQL reads exactly as the general path would write them; a row they reject
# is not necessarily bad, it just goes through event_line(), which converts it or rejects it.
_YEAR = r"[1-9]\d{3}"
_MONTH_DAY = (
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_TS_STRICT = (
    rf"{_YEAR}-{_MONTH_DAY}[T ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{{1,6}}+)?+"
    r"(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?+)?+"
)
_CSV_TEXT = r'[^,"\\\t\r\n\x00]'
_CSV_FAST = {
    "event_id": rf"{_CSV_TEXT}++",
    "occurred_at": _TS_STRICT,
    "developer_id": rf"{_CSV_TEXT}++",
    "method": r"[A-Z]{0,10}+",
    "status_code": r"[1-5]\d\d",
    "latency_ms": r"(?:\d{1,15}+(?:\.\d{1,15}+)?+)?+",
    "request_bytes": r"\d{0,18}+",
    "response_bytes": r"\d{0,18}+",
    "environment": r"(?:sandbox|production)?+",
}
_REQUIRED_FAST = ("event_id", "occurred_at", "developer_id", "status_code")


def fast_usable(names: list[str]) -> bool:
    """Only files whose columns are all canonical (no extras) and include every required one."""
    return (
        set(names) <= EVENT_COLUMN_SET
        and len(set(names)) == len(names)
        and set(_REQUIRED_FAST) <= set(names)
    )


def copy_order(names: list[str]) -> tuple[list[str], list[int]]:
    """COPY column order for a file: its own columns first (so a row maps by position), then the
    canonical columns it lacks; plus the permutation from EVENT_COLUMNS order to that order."""
    order = [n for n in names if n in EVENT_COLUMN_SET]
    order = list(dict.fromkeys(order))
    order += [c for c in EVENT_COLUMNS if c not in order]
    return order, [EVENT_COLUMNS.index(c) for c in order]


def _tail(missing: int, batch: str) -> str:
    # empty (NULL) values for the columns the file lacks, extras (NULL), batch_id
    return "\t" * (missing + 2) + batch + "\n"


class CsvFast:
    """Block fast path for a CSV whose header holds only canonical columns."""

    def __init__(self, header: list[str], batch: str) -> None:
        line = ",".join(_CSV_FAST.get(n, rf"{_CSV_TEXT}*+") for n in header)
        self.match = re.compile(rf"(?:{line}\n)*+").match
        self.tail = _tail(len(EVENT_COLUMNS) - len(header), batch)

    def convert(self, segment: str) -> str:
        return segment.replace(",", "\t").replace("\n", self.tail)


# JSON lines are matched the same way: one regex per line, built from the key order of the first
# object. It accepts only JSON whose strings need no unescaping (no backslash, no control
# character) and whose values PostgreSQL reads exactly as the general path would write them, so
# its capture groups are COPY text as they stand; `findall` turns a whole block into tuples of
# fields in C. This is about twice as fast as parsing the block with orjson and rebuilding each
# column (the previous fast path); PostgreSQL's own jsonb parser was slower still (measured).
_JSON_CHAR = r'[^"\\\x00-\x1f]'  # a string character that is itself in JSON and in COPY text
_SP = " *+"
_JSON_VALUES = {
    "event_id": rf'"({_JSON_CHAR}++)"',  # an empty id is hashed: general path
    "developer_id": rf'"({_JSON_CHAR}++)"',
    "occurred_at": rf'"({_TS_STRICT})"',
    "method": r'(?:"([A-Z]{0,10}+)"|null)',
    "status_code": r"([1-5]\d\d)",
    "latency_ms": r"(?:((?:0|[1-9]\d{0,14}+)(?:\.\d{1,15}+)?+)|null)",
    "request_bytes": r"(?:(0|[1-9]\d{0,17}+)|null)",
    "response_bytes": r"(?:(0|[1-9]\d{0,17}+)|null)",
    "environment": r'(?:"(sandbox|production|)"|null)',
}
_JSON_TEXT = rf'(?:"({_JSON_CHAR}*+)"|null)'  # "" and null are both NULL, as in the general path
# Extra keys go to `extras` verbatim. Only flat values whose jsonb equals what the general path
# stores (strings, integers, literals); a canonical key repeated as an "extra" is left to orjson.
_EXTRA_VALUE = rf'(?:"{_JSON_CHAR}*+"|-?+(?:0|[1-9]\d{{0,17}}+)|true|false|null)'
_EXTRA_KEY = rf'"(?!(?:{"|".join(EVENT_COLUMNS)})"){_JSON_CHAR}*+"'
_JSON_REQUIRED = ("event_id", "occurred_at", "developer_id", "status_code")


_LAST = itemgetter(-1)  # the extras group of a JsonLines match


class JsonLines:
    """Fast path for JSON lines of events whose canonical keys come in the first line's order.

    Lines that do not match (another key order, escapes, nulls where a value is required,
    values that need normalising, nested extras) are not necessarily bad: they go through
    the general path, which converts or rejects them.
    """

    def __init__(self, keys: list[str], batch: str, spaced: bool = True) -> None:
        order, self.perm = copy_order(keys)
        self.columns = (*order, "extras", "batch_id")
        # Compact JSON (no blanks between tokens, as most writers emit) gets a pattern without
        # the optional blanks, which matches about 15% faster.
        sp = _SP if spaced else ""
        members = f"{sp},{sp}".join(
            rf'"{key}"{sp}:{sp}{_JSON_VALUES.get(key, _JSON_TEXT)}' for key in keys
        )
        # One empty group per canonical column the file lacks: NULL fields in COPY order.
        absent = "()" * (len(order) - len(keys))
        # The extras group keeps the closing brace; rows() adds the opening one.
        extra = f"{_EXTRA_KEY}{sp}:{sp}{_EXTRA_VALUE}"
        extras = rf"(?:,{sp}({extra}(?:{sp},{sp}{extra})*+{sp}\}})|\}})"
        line = rf"{sp}\{{{sp}{members}{sp}{absent}{extras}{sp}\n"
        self.findall = re.compile("(?m)^" + line).findall
        self.id_of = itemgetter(order.index("event_id"))
        # The run matcher needs no groups (and Python 3.11's re mishandles groups inside a
        # possessive repeat), so every "(" that opens a group becomes "(?:".
        bare = re.sub(r"(?<!\\)\((?!\?)", "(?:", line)
        self.run = re.compile(f"(?:{bare})*+").match
        self.end = f"\t{batch}\n"

    @staticmethod
    def usable(keys: list[str]) -> bool:
        return all(key in keys for key in _JSON_REQUIRED)

    def rows(self, found: list[tuple[str, ...]]) -> tuple[str, list[str]]:
        """(COPY text, event ids) for findall() tuples: canonical fields, extras, batch."""
        text = self.end.join(map("\t".join, found)) + self.end
        if any(map(_LAST, found)):
            # Canonical fields never hold a quote, so a field starting with one is extras.
            text = text.replace('\t"', '\t{"')
        return text, list(map(self.id_of, found))

    def block(
        self, first: int, text: str, reject: RejectFn, batch: str, lines: int | None = None
    ) -> Iterator[str | tuple[str, list[str]]]:
        """COPY text for a block of whole lines; lines the regex refuses take the general path.

        Matched runs come as (text, event ids), so the loader need not find the ids again.
        `lines` is the number of lines in `text` when known (an upper bound is safe).
        """
        found = self.findall(text)
        # Each match is one whole line, so as many matches as lines means every line matched.
        if len(found) == (text.count("\n") if lines is None else lines):
            if found:
                yield self.rows(found)
            return
        pos, lineno, size = 0, first, len(text)
        while pos < size:
            end = self.run(text, pos).end()
            if end > pos:
                found = self.findall(text, pos, end)
                yield self.rows(found)
                lineno += len(found)
                pos = end
                if pos >= size:
                    return
            nl = text.index("\n", pos)
            row = json_event(lineno, text[pos:nl], self.perm, reject, batch)
            if row is not None:
                yield row
            lineno += 1
            pos = nl + 1


class LineCursor:
    """Reads blocks from a Source either as validated runs (fast path) or line by line.

    Iterating it yields (line number, line) like Source.lines(), so the general path (and the
    multi-line CSV reader) can pull continuation lines from it; `pushback` returns lines that
    were read ahead.
    """

    def __init__(self, source: Source) -> None:
        self.blocks = source.blocks()
        self.text = ""
        self.pos = 0
        self.lineno = 1
        self.pushback: list[tuple[int, str]] = []

    def _fill(self) -> bool:
        if self.pos < len(self.text):
            return True
        nxt = next(self.blocks, None)
        if nxt is None:
            self.text, self.pos = "", 0
            return False
        self.lineno, self.text = nxt
        self.pos = 0
        return True

    def run(self, match: Callable[[str, int], re.Match[str] | None]) -> str:
        """The longest run of lines from here that `match` accepts ("" if none)."""
        if self.pushback or not self._fill():
            return ""
        m = match(self.text, self.pos)
        end = m.end() if m else self.pos
        if end == self.pos:
            return ""
        segment = self.text[self.pos : end]
        self.lineno += segment.count("\n")
        self.pos = end
        return segment

    def __iter__(self) -> LineCursor:
        return self

    def __next__(self) -> tuple[int, str]:
        if self.pushback:
            return self.pushback.pop(0)
        if not self._fill():
            raise StopIteration
        nl = self.text.index("\n", self.pos)
        item = (self.lineno, self.text[self.pos : nl])
        self.pos = nl + 1
        self.lineno += 1
        return item
