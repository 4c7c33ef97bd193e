"""Values into PostgreSQL COPY text: validation, conversion, escaping and the reject reasons.

Every value that reaches COPY has been validated here, so a load never fails on the server because
of one bad row: the row is rejected with a short, stable reason (see REJECT_REASONS) instead.
Values already in a form PostgreSQL reads (ISO timestamps, three-digit status codes) are passed
through untouched, which keeps the per-row cost of the hot paths low.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

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
    "gzip over size limit",
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
fromiso = datetime.fromisoformat


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


def as_text(value: Any, column: str) -> str | None:
    """A scalar as text (None for missing or empty); nested values are a 'bad value'."""
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
        parsed = fromiso(value)
    except ValueError:
        raise Reject("unparsable timestamp") from None
    if _PG_ISO.match(value):
        return value, parsed
    return parsed.isoformat(), parsed


def utc_iso(parsed: datetime) -> str:
    """A parsed timestamp as naive ISO text in UTC."""
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat()


def status_code(value: Any) -> str:
    """A three-digit HTTP status code as text, else a 'bad status code' reject."""
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


def non_negative_float(value: Any, reason: str) -> str | None:
    """A finite number >= 0 as text (None when empty), else rejected with `reason`."""
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


def non_negative_int(value: Any, reason: str) -> str | None:
    """A whole number >= 0 that fits a bigint, as text (None when empty), else `reason`."""
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


def boolean(value: Any, reason: str, default: str | None = None) -> str | None:
    """A boolean as COPY's 't' / 'f' (`default` when empty), else rejected with `reason`."""
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


def extras_json(extras: dict[str, Any]) -> str:
    """A row's unknown columns as escaped JSON for the extras column."""
    try:
        text = json.dumps(extras, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:
        raise Reject("malformed JSON") from None
    if "\\u0000" in text:
        raise Reject("NUL byte")
    return copy_escape(text)


def check_utf8(row: list[str]) -> None:
    """JSON escapes can produce lone surrogates, which no UTF-8 database can store."""
    for value in row:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Reject("invalid UTF-8") from None
