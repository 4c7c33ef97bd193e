"""Streaming parsers: raw records in, PostgreSQL COPY text out, bad rows to the reject callback.

Every value that reaches COPY has been validated here, so a load never fails on the server because
of one bad row: the row is rejected with a short, stable reason (see REJECT_REASONS) instead. The
hot paths (CSV and JSONL events) do as little per row as possible: the raw line is checked once
for characters that need COPY escaping, and values that are already in a form PostgreSQL reads
(ISO timestamps, three-digit status codes) are passed through untouched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingest.sources import RejectFn, Source

try:  # orjson is several times faster than json, and parses a whole block of lines at once
    import orjson

    orjson_loads: Callable[[str], Any] = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover - orjson comes with dagster-dbt
    orjson_loads = json.loads
    _JSON_ERRORS = (ValueError,)
_loads = orjson_loads

# The reasons a row can be rejected with; each is stored verbatim in raw.load_rejects.reason.
REJECT_REASONS = (
    "malformed JSON",
    "not a JSON object",
    "broken CSV quoting",
    "wrong number of fields",
    "unparsable log line",
    "invalid UTF-8",
    "NUL byte",
    "line too long",
    "truncated gzip",
    "corrupt gzip",
    "missing developer_id",
    "missing occurred_at",
    "unparsable timestamp",
    "bad status code",
    "bad latency_ms",
    "bad request_bytes",
    "bad response_bytes",
    "bad environment",
    "missing incident_id",
    "missing started_at",
    "missing affected_route",
    "missing route",
    "bad monthly_quota",
    "bad marketing_opt_in",
    "bad promoted",
    "bad value",
)

# COPY runs with `null ''`: an empty field is NULL, so fast paths pass empty CSV fields through.
NULL = ""
COPY_OPTIONS = "(format text, null '')"

EVENT_COLUMNS = (
    "event_id",
    "occurred_at",
    "developer_id",
    "company_id",
    "method",
    "path",
    "status_code",
    "latency_ms",
    "request_bytes",
    "response_bytes",
    "environment",
    "api_key_id",
    "user_agent",
    "ip",
)
EVENT_COLUMN_SET = frozenset(EVENT_COLUMNS)
# COPY column list of raw.api_events, in the order the event lines are written.
EVENT_COPY_COLUMNS = (*EVENT_COLUMNS, "extras", "batch_id")

ROLES = frozenset(
    {
        "product",
        "engineering",
        "marketing",
        "customer_success",
        "developer_relations",
        "sales",
        "support",
        "executive",
    }
)
ENVIRONMENTS = {
    "sandbox": "sandbox",
    "production": "production",
    "prod": "production",
    "live": "production",
    "test": "sandbox",
    "dev": "sandbox",
    "development": "sandbox",
    "staging": "sandbox",
}
TRUE = frozenset({"true", "t", "1", "yes", "y", "on"})
FALSE = frozenset({"false", "f", "0", "no", "n", "off"})
STATUS_CODES = {str(code): str(code) for code in range(100, 600)}

# Timestamps PostgreSQL reads exactly as Python does; anything else is re-serialised by Python.
_PG_ISO = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d(?::?\d\d)?)?\Z"
)
_fromiso = datetime.fromisoformat


class Reject(Exception):
    """A row that cannot be loaded; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- value conversion ----------------------------------------------------------------------------
def copy_escape(value: str) -> str:
    """Escape a value for COPY text format; NUL cannot be stored in PostgreSQL text at all."""
    if "\x00" in value:
        raise Reject("NUL byte")
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def needs_escape(raw: str) -> bool:
    """Whether a raw line may hold characters COPY text format must escape (checked once a row)."""
    return "\\" in raw or "\t" in raw or "\r" in raw or "\x00" in raw


def _text(value: Any, column: str) -> str | None:
    if value is None or value == "":
        return None
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise Reject("bad value")


def parse_timestamp(value: Any) -> tuple[str, datetime]:
    """(text PostgreSQL reads with TimeZone=UTC, parsed datetime); no zone means UTC."""
    if type(value) is not str:
        raise Reject("unparsable timestamp")
    try:
        parsed = _fromiso(value)
    except ValueError:
        raise Reject("unparsable timestamp") from None
    if _PG_ISO.match(value):
        return value, parsed
    return parsed.isoformat(), parsed


def utc_iso(parsed: datetime) -> str:
    """A datetime as naive UTC ISO text (what COPY reads into timestamptz)."""
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat()


def _status(value: Any) -> str:
    if type(value) is str:
        code = STATUS_CODES.get(value)
        if code is None:
            code = STATUS_CODES.get(value.strip())
    elif type(value) is int:
        code = STATUS_CODES.get(str(value))
    else:
        code = None
    if code is None:
        raise Reject("bad status code")
    return code


def _float(value: Any, reason: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Reject(reason)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Reject(reason) from None
    if not math.isfinite(number) or number < 0:
        raise Reject(reason)
    return repr(number)


def _int(value: Any, reason: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Reject(reason)
    if type(value) is float:
        if not value.is_integer():
            raise Reject(reason)
        value = int(value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Reject(reason) from None
    if number < 0 or number >= 2**63:
        raise Reject(reason)
    return str(number)


def _bool(value: Any, reason: str, default: str | None = None) -> str | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value).strip().lower()
    if text in TRUE:
        return "t"
    if text in FALSE:
        return "f"
    raise Reject(reason)


def _dumps(extras: dict[str, Any]) -> str:
    try:
        text = json.dumps(extras, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:
        raise Reject("malformed JSON") from None
    if "\\u0000" in text:
        raise Reject("NUL byte")
    return copy_escape(text)


# -- API events ----------------------------------------------------------------------------------
def event_line(
    values: list[Any],
    extras: dict[str, Any] | None,
    escape: bool,
    batch: str,
    occurrence: int = 0,
    perm: list[int] | None = None,
) -> str:
    """One COPY line for raw.api_events from values in EVENT_COLUMNS order.

    Without an event_id the id is a hash of the normalised row (timestamp in UTC, numbers
    re-serialised), so the same call read from CSV, JSONL or another file gets the same id and
    is loaded once. `occurrence` tells apart identical rows inside one file for sources with
    one-second timestamps (access logs), where identical rows are distinct calls.
    """
    (eid, ts, dev, company, method, path, status, latency, req, resp, env, key, agent, ip) = values
    if not dev:
        raise Reject("missing developer_id")
    if type(dev) is not str:
        dev = _text(dev, "developer_id")
    if not ts:
        raise Reject("missing occurred_at")
    ts_text, parsed = parse_timestamp(ts)
    status = _status(status)
    latency = _float(latency, "bad latency_ms") if latency not in (None, "") else None
    req = _int(req, "bad request_bytes") if req not in (None, "") else None
    resp = _int(resp, "bad response_bytes") if resp not in (None, "") else None
    if env:
        if type(env) is not str:
            raise Reject("bad environment")
        env = ENVIRONMENTS.get(env) or ENVIRONMENTS.get(env.strip().lower())
        if env is None:
            raise Reject("bad environment")
    else:
        env = None
    if method:
        method = method.upper() if type(method) is str else _text(method, "method")
    else:
        method = None
    company = company if type(company) is str and company else _text(company, "company_id")
    path = path if type(path) is str and path else _text(path, "path")
    key = key if type(key) is str and key else _text(key, "api_key_id")
    agent = agent if type(agent) is str and agent else _text(agent, "user_agent")
    ip = ip if type(ip) is str and ip else _text(ip, "ip")
    if eid:
        if type(eid) is not str:
            eid = _text(eid, "event_id")
    else:
        parts = [
            utc_iso(parsed),
            dev,
            company or "",
            method or "",
            path or "",
            status,
            latency or "",
            req or "",
            resp or "",
            env or "",
            key or "",
            agent or "",
            ip or "",
        ]
        if occurrence:
            parts.append(str(occurrence))
        eid = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    row = [
        eid,
        ts_text,
        dev,
        company,
        method,
        path,
        status,
        latency,
        req,
        resp,
        env,
        key,
        agent,
        ip,
    ]
    if perm is not None:
        row = [row[i] for i in perm]
    if escape:
        row = [NULL if v is None else copy_escape(v) for v in row]
        _check_utf8(row)
    else:
        row = [NULL if v is None else v for v in row]
    row.append(_dumps(extras) if extras else NULL)
    row.append(batch)
    return "\t".join(row) + "\n"


def _check_utf8(row: list[str]) -> None:
    """JSON escapes can produce lone surrogates, which no UTF-8 database can store."""
    for value in row:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Reject("invalid UTF-8") from None


# -- tables other than events --------------------------------------------------------------------
Converter = Callable[[Any], str | None]


def _required(reason: str) -> Converter:
    def convert(value: Any) -> str:
        text = _text(value, reason)
        if text is None or not text.strip():
            raise Reject(reason)
        return text.strip()

    return convert


def _optional_text(value: Any) -> str | None:
    text = _text(value, "")
    return text.strip() if text is not None else None


def _optional_ts(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return parse_timestamp(value.strip() if type(value) is str else value)[0]


def _required_ts(reason: str) -> Converter:
    def convert(value: Any) -> str:
        if value is None or value == "":
            raise Reject(reason)
        return parse_timestamp(value.strip() if type(value) is str else value)[0]

    return convert


def _role(value: Any) -> str:
    text = (_text(value, "role") or "").strip().lower().replace("-", "_").replace(" ", "_")
    if not text:
        return "unknown"
    if text in ROLES:
        return text
    # Kept, not rejected: the developer still matters; dbt staging maps it to `unknown`.
    return text


TableSpec = tuple[tuple[str, Converter], ...]

TABLE_SPECS: dict[str, TableSpec] = {
    "developers": (
        ("developer_id", _required("missing developer_id")),
        ("email", _optional_text),
        ("name", _optional_text),
        ("company_id", _optional_text),
        ("company_name", _optional_text),
        ("role", _role),
        ("signed_up_at", _optional_ts),
        ("plan", _optional_text),
        ("monthly_quota", lambda v: _int(v, "bad monthly_quota")),
        ("timezone", _optional_text),
        ("marketing_opt_in", lambda v: _bool(v, "bad marketing_opt_in")),
    ),
    "incidents": (
        ("incident_id", _required("missing incident_id")),
        ("title", _optional_text),
        ("started_at", _required_ts("missing started_at")),
        ("ended_at", _optional_ts),
        ("affected_route", _required("missing affected_route")),
    ),
    "endpoints": (
        ("route", _required("missing route")),
        ("feature_name", _optional_text),
        ("promoted", lambda v: _bool(v, "bad promoted", default="f")),
        ("docs_url", _optional_text),
    ),
}


def table_copy_columns(kind: str) -> tuple[str, ...]:
    """The COPY column list of a reference table."""
    return (*(name for name, _ in TABLE_SPECS[kind]), "extras", "batch_id", "line_number")


def table_line(
    spec: TableSpec, values: list[Any], extras: dict[str, Any] | None, batch: str, lineno: int
) -> str:
    """One COPY text line of a reference table row."""
    row = []
    for (_, convert), value in zip(spec, values, strict=True):
        out = convert(value)
        row.append(NULL if out is None else copy_escape(out))
    _check_utf8(row)
    row.append(_dumps(extras) if extras else NULL)
    row.append(batch)
    row.append(str(lineno))
    return "\t".join(row) + "\n"


# -- record readers ------------------------------------------------------------------------------
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


def _csv_header(rows: Iterator[tuple[int, list[str], str, bool]]) -> list[str] | None:
    first = next(rows, None)
    if first is None:
        return None
    return [name.strip().lower() for name in first[1]]


# -- fast paths ----------------------------------------------------------------------------------
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
            row = _json_event(lineno, text[pos:nl], self.perm, reject, batch)
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
        values = [fields[i] if i >= 0 else None for i in index]
        extras = {name: fields[i] for i, name in extra_index if fields[i] != ""} or None
        try:
            yield event_line(values, extras, escape, batch, perm=perm)
        except Reject as exc:
            reject(lineno, exc.reason, raw)


def _json_objects(
    source: Source, reject: RejectFn
) -> Iterator[tuple[int, dict[str, Any], str, bool]]:
    """(line number, object, raw line, escape needed) per JSON line; blank lines skipped."""
    loads = _loads
    for lineno, line in source.lines():
        try:
            obj = loads(line)
        except _JSON_ERRORS:
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
    fast = _learn_json_lines(head[1], batch) if head is not None else None
    yield fast.columns if fast is not None else EVENT_COPY_COLUMNS
    if head is None:
        return
    for first, text, lines in chain([head], blocks):
        if fast is not None:
            yield from fast.block(first, text, reject, batch, lines)
            continue
        for lineno, line in enumerate(text.split("\n")[:-1], first):
            row = _json_event(lineno, line, None, reject, batch)
            if row is not None:
                yield row


def _learn_json_lines(text: str, batch: str) -> JsonLines | None:
    """The fast path for the key order of the first object in `text`, if it has the keys."""
    for line in text.split("\n", 1000)[:1000]:
        try:
            obj = _loads(line)
        except _JSON_ERRORS:
            continue
        if type(obj) is not dict:
            continue
        keys = [key for key in obj if key in EVENT_COLUMN_SET]
        if not JsonLines.usable(keys):
            return None
        compact = JsonLines(keys, batch, spaced=False)
        return compact if compact.run(line + "\n").end() else JsonLines(keys, batch)
    return None


def _json_event(
    lineno: int, line: str, perm: list[int] | None, reject: RejectFn, batch: str
) -> str | None:
    """The general path for one JSON line of canonical events."""
    try:
        obj = _loads(line)
    except _JSON_ERRORS:
        if line.strip():
            reject(lineno, "malformed JSON", line)
        return None
    if type(obj) is not dict:
        reject(lineno, "not a JSON object", line)
        return None
    values = [obj.get(c) for c in EVENT_COLUMNS]
    extras = (
        None
        if obj.keys() <= EVENT_COLUMN_SET
        else {k: v for k, v in obj.items() if k not in EVENT_COLUMN_SET}
    )
    try:
        return event_line(values, extras, "\\" in line or "\x00" in line, batch, perm=perm)
    except Reject as exc:
        reject(lineno, exc.reason, line)
        return None


def parse_csv_table(kind: str, source: Source, reject: RejectFn, batch: str) -> Iterator[str]:
    """COPY lines of a reference table from CSV (first: the column list)."""
    spec = TABLE_SPECS[kind]
    yield table_copy_columns(kind)
    rows = csv_rows(source.lines(), reject)
    header = _csv_header(rows)
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
        values = [fields[i] if i >= 0 else None for i in index]
        extras = {name: fields[i] for i, name in extra_index if fields[i] != ""} or None
        try:
            yield table_line(spec, values, extras, batch, lineno)
        except Reject as exc:
            reject(lineno, exc.reason, raw)


def parse_jsonl_table(kind: str, source: Source, reject: RejectFn, batch: str) -> Iterator[str]:
    """COPY lines of a reference table from JSON lines (first: the column list)."""
    spec = TABLE_SPECS[kind]
    yield table_copy_columns(kind)
    names = [name for name, _ in spec]
    known = set(names)
    for lineno, obj, line, _escape in _json_objects(source, reject):
        values = [obj.get(n) for n in names]
        extras = {k: v for k, v in obj.items() if k not in known} or None
        try:
            yield table_line(spec, values, extras, batch, lineno)
        except Reject as exc:
            reject(lineno, exc.reason, line)


# -- Moesif --------------------------------------------------------------------------------------
MAX_JSON_ELEMENT_CHARS = 64 << 20
_decoder = json.JSONDecoder()
_WS = " \t\r\n"


def moesif_objects(source: Source, reject: RejectFn) -> Iterator[tuple[int, Any, str, bool]]:
    """Moesif events from JSON lines or from one JSON array, streamed element by element.

    The array is never read whole: `raw_decode` runs over a sliding text buffer. An element that
    does not parse is rejected ("malformed JSON") and reading resumes at the next line.
    """
    head = source.head(4096).lstrip()
    if not head.startswith(b"["):
        for lineno, obj, line, escape in _json_objects(source, reject):
            yield lineno, obj, line, escape
        return
    chunks = source.text_chunks()
    buf = ""
    pos = 0
    lineno = 1  # line number at buf[pos]
    eof = False
    started = False

    def more() -> bool:
        nonlocal buf, pos, eof
        nxt = next(chunks, None)
        if nxt is None:
            eof = True
            return False
        buf = buf[pos:] + nxt
        pos = 0
        return True

    def skip(chars: str) -> None:
        nonlocal pos, lineno
        while True:
            while pos < len(buf) and buf[pos] in chars:
                if buf[pos] == "\n":
                    lineno += 1
                pos += 1
            if pos < len(buf) or eof or not more():
                return

    while True:
        skip(_WS)
        if not started:
            if pos < len(buf) and buf[pos] == "[":
                pos += 1
                started = True
                continue
        skip(_WS + ",")
        if pos >= len(buf):
            if source.broken:
                reject(lineno, source.broken, "")
            else:
                reject(lineno, "malformed JSON", "(JSON array not closed)")
            return
        if buf[pos] == "]":
            return
        try:
            obj, end = _decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            need_more = not eof and (
                exc.pos >= len(buf) - 1
                or ("Unterminated string" in exc.msg and "\n" not in buf[exc.pos :])
                or len(buf) - pos < 4096
            )
            if need_more and len(buf) - pos < MAX_JSON_ELEMENT_CHARS and more():
                continue
            if eof and source.broken:
                reject(lineno, source.broken, buf[pos:][:65536])
                return
            # Reject up to the end of the line and resume after it.
            nl = buf.find("\n", pos)
            stop = len(buf) if nl < 0 else nl
            reject(lineno, "malformed JSON", buf[pos:stop].rstrip().removesuffix(",")[:65536])
            pos = stop
            continue
        text = buf[pos:end]
        yield lineno, obj, text, True
        lineno += text.count("\n")
        pos = end
        if pos > len(buf) // 2 and not eof:
            buf = buf[pos:]
            pos = 0
        if len(buf) - pos < 65536 and not eof:
            more()


def _ms_between(start: datetime, end: datetime) -> float:
    if (start.tzinfo is None) != (end.tzinfo is None):
        start = start.replace(tzinfo=start.tzinfo or UTC)
        end = end.replace(tzinfo=end.tzinfo or UTC)
    return (end - start).total_seconds() * 1000.0


def _header(headers: Any, name: str) -> Any:
    if not isinstance(headers, dict):
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


_MOESIF_KNOWN = frozenset(
    {
        "request",
        "response",
        "user_id",
        "company_id",
        "session_token",
        "metadata",
        "event_id",
        "transaction_id",
        "id",
    }
)


def moesif_values(obj: dict[str, Any]) -> tuple[list[Any], dict[str, Any] | None]:
    """Map one Moesif event to EVENT_COLUMNS values plus extras (metadata and unknown keys)."""
    request = obj.get("request")
    response = obj.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise Reject("malformed JSON")
    started = request.get("time")
    if not started:
        raise Reject("missing occurred_at")
    _, start_dt = parse_timestamp(started)
    latency = None
    if response.get("time"):
        _, end_dt = parse_timestamp(response["time"])
        latency = _ms_between(start_dt, end_dt)
        if latency < 0:
            raise Reject("bad latency_ms")
    uri = request.get("uri")
    path = uri
    if type(uri) is str and "://" in uri:
        parts = urlsplit(uri)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else None
    environment = None
    if metadata:
        environment = metadata.get("environment") or metadata.get("env")
    extras: dict[str, Any] = {}
    if metadata:
        extras["metadata"] = metadata
    for key, value in obj.items():
        if key not in _MOESIF_KNOWN:
            extras[key] = value
    for key in ("api_version", "transfer_encoding"):
        if request.get(key) is not None:
            extras[f"request.{key}"] = request[key]
    status = response.get("status")
    values = [
        obj.get("event_id") or obj.get("transaction_id") or obj.get("id"),
        started,
        obj.get("user_id"),
        obj.get("company_id"),
        request.get("verb"),
        path,
        status if type(status) is not float else int(status),
        latency,
        _header(request.get("headers"), "Content-Length"),
        _header(response.get("headers"), "Content-Length"),
        environment,
        obj.get("session_token"),
        _header(request.get("headers"), "User-Agent"),
        request.get("ip_address"),
    ]
    return values, extras or None


def parse_moesif_events(
    source: Source, reject: RejectFn, batch: str, caller: str | None = None
) -> Iterator[str]:
    """COPY lines of raw.api_events from a Moesif export (first: the column list)."""
    yield EVENT_COPY_COLUMNS
    for lineno, obj, text, _escape in moesif_objects(source, reject):
        try:
            if type(obj) is not dict:
                raise Reject("not a JSON object")
            values, extras = moesif_values(obj)
            yield event_line(values, extras, True, batch)
        except Reject as exc:
            reject(lineno, exc.reason, text)


# -- Apache / NGINX combined access log ----------------------------------------------------------
_COMBINED = re.compile(
    r'(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+|"[^"]*") \[(?P<time>[^\]]+)\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\S+) (?P<bytes>\S+)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?P<rest>.*)\Z'
)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}
_CLF_TIME = re.compile(
    r"(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? ([+-])(\d\d)(\d\d)\Z"
)
_REST_KV = re.compile(r'([A-Za-z_][\w.-]*)[=:]\s*("(?:[^"\\]|\\.)*"|\S+)')
_REST_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*\Z")
_LATENCY_KEYS = ("request_time", "rt", "upstream_response_time", "urt", "duration")


def _clf_time(text: str) -> str:
    """`10/Oct/2000:13:55:36 -0700` -> ISO 8601 with offset."""
    match = _CLF_TIME.match(text)
    if not match or match.group(2) not in _MONTHS:
        raise Reject("unparsable timestamp")
    day, mon, year, hh, mm, ss, frac, sign, oh, om = match.groups()
    iso = f"{year}-{_MONTHS[mon]:02d}-{day}T{hh}:{mm}:{ss}"
    if frac:
        iso += f".{frac}"
    iso += f"{sign}{oh}:{om}"
    try:
        _fromiso(iso)
    except ValueError:
        raise Reject("unparsable timestamp") from None
    return iso


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _norm_key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    return key[5:] if key.startswith("http_") else key


def validate_caller(caller: str | None) -> str | None:
    """Check a --caller rule early so a typo is one clear error, not a file of rejects."""
    if caller in (None, "", "auto"):
        return None
    if caller in ("remote-user", "ip"):
        return caller
    for prefix in ("query:", "header:"):
        if caller.startswith(prefix) and caller[len(prefix) :].strip():
            return caller
    raise ValueError(
        f"unknown --caller {caller!r}: use remote-user, ip, query:PARAM or header:NAME"
    )


def parse_combined_events(
    source: Source, reject: RejectFn, batch: str, caller: str | None = None
) -> Iterator[str]:
    """Access-log lines -> events. The caller rule picks developer_id (see DESIGN.md)."""
    caller = validate_caller(caller)
    yield EVENT_COPY_COLUMNS
    window_ts: str | None = None
    seen: dict[str, int] = {}
    for lineno, line in source.lines():
        if not line.strip():
            continue
        match = _COMBINED.match(line)
        if match is None:
            reject(lineno, "unparsable log line", line)
            continue
        try:
            ts = _clf_time(match.group("time"))
            request = match.group("request")
            pieces = request.split(" ")
            if len(pieces) == 3 and pieces[2].startswith("HTTP/"):
                method, path = pieces[0], pieces[1]
            elif len(pieces) == 2 and pieces[0].isalpha():
                method, path = pieces[0], pieces[1]
            else:
                raise Reject("unparsable log line")
            query = parse_qs(urlsplit(path).query) if "?" in path else {}
            user = _unquote(match.group("user"))
            user = None if user in ("-", "") else user
            ip = match.group("ip")
            agent = match.group("agent")
            referer = match.group("referer")
            rest = match.group("rest") or ""
            kv = {_norm_key(k): _unquote(v) for k, v in _REST_KV.findall(rest)} if rest else {}
            developer = _caller(caller, user, ip, query, kv, agent, referer)
            latency = None
            for key in _LATENCY_KEYS:
                if key in kv:
                    latency = kv[key]
                    break
            else:
                bare = _REST_NUMBER.match(rest) if rest else None
                if bare:
                    latency = bare.group(1)
            if latency not in (None, "", "-"):
                try:
                    latency = float(str(latency).split(",")[0]) * 1000.0
                except ValueError:
                    raise Reject("bad latency_ms") from None
            else:
                latency = None
            size = match.group("bytes")
            api_key = query.get("api_key", [None])[0]
            values = [
                None,
                ts,
                developer,
                None,
                method,
                path,
                match.group("status"),
                latency,
                None,
                None if size == "-" else size,  # %b is the response size
                kv.get("environment") or kv.get("env"),
                api_key,
                None if agent in (None, "-") else agent,
                ip,
            ]
            extras: dict[str, Any] = {}
            if referer and referer != "-":
                extras["referer"] = referer
            if rest.strip():
                extras["log_rest"] = rest.strip()
            if ts != window_ts:  # identical lines only count within one timestamp
                window_ts = ts
                seen.clear()
            key = line
            seen[key] = occurrence = seen.get(key, 0) + 1
            yield event_line(values, extras or None, True, batch, occurrence)
        except Reject as exc:
            reject(lineno, exc.reason, line)


def _caller(
    rule: str | None,
    user: str | None,
    ip: str,
    query: dict[str, list[str]],
    kv: dict[str, str],
    agent: str | None,
    referer: str | None,
) -> str | None:
    if rule is None:
        return user or (query.get("api_key") or [None])[0] or (ip if ip != "-" else None)
    if rule == "remote-user":
        return user
    if rule == "ip":
        return ip if ip != "-" else None
    if rule.startswith("query:"):
        return (query.get(rule[6:]) or [None])[0] or None
    name = _norm_key(rule[7:])
    if name == "user_agent":
        return None if agent in (None, "-") else agent
    if name in ("referer", "referrer"):
        return None if referer in (None, "-") else referer
    value = kv.get(name)
    return None if value in (None, "-", "") else value
