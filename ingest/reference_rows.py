"""Reference tables (developers, incidents, endpoints): a converter per column, a COPY line a row.

Unlike events these rows carry their line number, so dbt staging can keep the last row of a key
in file order, and rejects point at the line to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.copy_encoding import (
    NULL,
    Reject,
    as_text,
    boolean,
    check_utf8,
    copy_escape,
    extras_json,
    non_negative_int,
    parse_timestamp,
)

Converter = Callable[[Any], str | None]


def _required(reason: str) -> Converter:
    def convert(value: Any) -> str:
        text = as_text(value, reason)
        if text is None or not text.strip():
            raise Reject(reason)
        return text.strip()

    return convert


def _optional_text(value: Any) -> str | None:
    text = as_text(value, "")
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
    """Normalised spelling only: an unrecognised role is kept, not rejected (the developer still
    matters), and dbt staging maps it to `unknown` with the role list of onramp/roles.py."""
    text = (as_text(value, "role") or "").strip().lower().replace("-", "_").replace(" ", "_")
    return text or "unknown"


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
        ("monthly_quota", lambda v: non_negative_int(v, "bad monthly_quota")),
        ("timezone", _optional_text),
        ("marketing_opt_in", lambda v: boolean(v, "bad marketing_opt_in")),
        # when the source last changed the row: it, not load order, picks a developer's row
        ("updated_at", _optional_ts),
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
        ("promoted", lambda v: boolean(v, "bad promoted", default="f")),
        ("docs_url", _optional_text),
    ),
}


def table_copy_columns(kind: str) -> tuple[str, ...]:
    """The COPY column order of a reference table: its columns, then the load bookkeeping."""
    return (*(name for name, _ in TABLE_SPECS[kind]), "extras", "batch_id", "line_number")


def table_line(
    spec: TableSpec, values: list[Any], extras: dict[str, Any] | None, batch: str, lineno: int
) -> str:
    """One validated reference-table row as a COPY text line."""
    row = []
    for (_, convert), value in zip(spec, values, strict=True):
        out = convert(value)
        row.append(NULL if out is None else copy_escape(out))
    check_utf8(row)
    row.append(extras_json(extras) if extras else NULL)
    row.append(batch)
    row.append(str(lineno))
    return "\t".join(row) + "\n"
