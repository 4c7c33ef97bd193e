"""Canonical API events: the raw.api_events columns and one COPY line per event.

Every event format (CSV, JSON lines, Moesif, access logs) ends in `event_line`, so an event has
the same id and the same stored values whichever file it came from.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ingest.copy_encoding import (
    ENVIRONMENTS,
    NULL,
    Reject,
    as_text,
    check_utf8,
    copy_escape,
    extras_json,
    non_negative_float,
    non_negative_int,
    parse_timestamp,
    status_code,
    utc_iso,
)
from ingest.sources import RejectFn

# orjson is several times faster than json, and parses a whole block of lines at once.
loads = orjson.loads
JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)

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
        dev = as_text(dev, "developer_id")
    if not ts:
        raise Reject("missing occurred_at")
    ts_text, parsed = parse_timestamp(ts)
    status = status_code(status)
    latency = non_negative_float(latency, "bad latency_ms") if latency not in (None, "") else None
    req = non_negative_int(req, "bad request_bytes") if req not in (None, "") else None
    resp = non_negative_int(resp, "bad response_bytes") if resp not in (None, "") else None
    if env:
        if type(env) is not str:
            raise Reject("bad environment")
        env = ENVIRONMENTS.get(env) or ENVIRONMENTS.get(env.strip().lower())
        if env is None:
            raise Reject("bad environment")
    else:
        env = None
    if method:
        method = method.upper() if type(method) is str else as_text(method, "method")
    else:
        method = None
    company = company if type(company) is str and company else as_text(company, "company_id")
    path = path if type(path) is str and path else as_text(path, "path")
    key = key if type(key) is str and key else as_text(key, "api_key_id")
    agent = agent if type(agent) is str and agent else as_text(agent, "user_agent")
    ip = ip if type(ip) is str and ip else as_text(ip, "ip")
    if eid:
        if type(eid) is not str:
            eid = as_text(eid, "event_id")
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
        check_utf8(row)
    else:
        row = [NULL if v is None else v for v in row]
    row.append(extras_json(extras) if extras else NULL)
    row.append(batch)
    return "\t".join(row) + "\n"


def json_event(
    lineno: int, line: str, perm: list[int] | None, reject: RejectFn, batch: str
) -> str | None:
    """The general path for one JSON line of canonical events."""
    try:
        obj = loads(line)
    except JSON_ERRORS:
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
