"""Moesif event exports: JSON lines or one (possibly minified) JSON array, streamed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ingest.copy_encoding import Reject, parse_timestamp
from ingest.event_rows import EVENT_COPY_COLUMNS, event_line
from ingest.jsonl_format import json_objects
from ingest.sources import RejectFn, Source

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
        for lineno, obj, line, escape in json_objects(source, reject):
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
            if source.writing:
                source.held_back = max(1, len(buf) - pos)  # the array's end is still to come
            elif source.broken:
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
            if eof and source.writing and not buf[pos:].rstrip().endswith("]"):
                source.held_back = max(1, len(buf) - pos)  # an element still being written
                return
            if eof and source.broken:
                reject(lineno, source.broken, buf[pos:][:65536])
                return
            # Resynchronise at the next element: one bad element is one reject, also in a
            # minified array without a single newline.
            cut = _next_element(buf, pos)
            while cut < 0 and not eof and len(buf) - pos < MAX_JSON_ELEMENT_CHARS:
                if not more():
                    break
                cut = _next_element(buf, pos)
            if cut < 0:  # the broken element runs to the end of what can be read
                rest = buf[pos:].rstrip()
                closed = rest.endswith("]")
                bad = rest.removesuffix("]").rstrip().removesuffix(",") if closed else rest
                reject(lineno, "malformed JSON", bad[:65536])
                if closed or eof:
                    return
                lineno += buf.count("\n", pos)
                pos = len(buf)
                continue
            reject(lineno, "malformed JSON", buf[pos:cut].rstrip()[:65536])
            lineno += buf.count("\n", pos, cut)
            pos = cut
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


# Where a new array element may start: a comma, blanks, an opening brace.
_ELEMENT_START = re.compile(r",\s*(?=\{)")
_SEPARATOR = re.compile(r"\s*[,\]]")
RESYNC_WINDOW = 4 << 20  # chars searched for the next element after a broken one


def _next_element(buf: str, pos: int) -> int:
    """Where the element after the broken one at `pos` starts (its comma), or -1 if not in `buf`.

    A candidate counts only if a Moesif event parses there (an object with a `request`) and a
    comma or the closing bracket follows it, so an object nested in the broken element (a
    response body's list of objects) is not taken for the next element.
    """
    for match in _ELEMENT_START.finditer(buf, pos + 1, pos + RESYNC_WINDOW):
        try:
            obj, end = _decoder.raw_decode(buf, match.end())
        except json.JSONDecodeError:
            continue
        if type(obj) is dict and "request" in obj and _SEPARATOR.match(buf, end):
            return match.start()
    return -1


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
    """Yields the event COPY columns, then one COPY line per Moesif event object."""
    yield EVENT_COPY_COLUMNS
    for lineno, obj, text, _escape in moesif_objects(source, reject):
        try:
            if type(obj) is not dict:
                raise Reject("not a JSON object")
            values, extras = moesif_values(obj)
            yield event_line(values, extras, True, batch)
        except Reject as exc:
            reject(lineno, exc.reason, text)
