"""The PostgreSQL loader's row rules (ingest.event_rows, ingest.reference_rows) as Spark columns.

Each rule is a (failing condition, reason) pair, checked in the same order as the Python code, so
a row breaking several rules is rejected with the same reason on both engines. The reasons are
the fixed strings of ingest.copy_encoding.REJECT_REASONS. Events without an event_id get the
same hashed id as on PostgreSQL (the same normalised parts, sha256, 32 hex digits), so a file
loaded into either warehouse yields the same ids.
"""

from __future__ import annotations

from typing import Any

from ingest.copy_encoding import ENVIRONMENTS, FALSE, TRUE
from ingest.event_rows import EVENT_COLUMNS
from ingest.reference_rows import TABLE_SPECS
from ingest.spark.values import BOOLEAN, INTEGER, NESTED, NUMBER, PARSE_REASON, STRING, kind_col

REASON = "reason"


def _f() -> Any:
    from pyspark.sql import functions as F

    return F


def _text(name: str) -> Any:
    return _f().col(name)


def _kind(name: str) -> Any:
    return _f().col(kind_col(name))


def _missing(name: str) -> Any:
    return _text(name).isNull() | (_text(name) == "")


def _timestamp(text: Any) -> Any:
    # ISO 8601; no zone means UTC (the session time zone). try_: a bad value is NULL, not an error.
    return _f().call_function("try_to_timestamp", text)


def _first_reason(rules: list[tuple[Any, str]]) -> Any:
    F = _f()
    out = F.when(F.col(PARSE_REASON).isNotNull(), F.col(PARSE_REASON))
    for failing, reason in rules:
        out = out.when(failing, F.lit(reason))
    return out


def _non_negative_float(name: str) -> Any:
    F = _f()
    number = F.expr(f"try_cast(trim({name}) as double)")
    return number, (
        _kind(name).isin(BOOLEAN, NESTED)
        | number.isNull()
        | F.isnan(number)
        | (number == float("inf"))
        | (number < 0)
    )


def _non_negative_int(name: str) -> Any:
    """A whole number >= 0 below 2**63: digits, a JSON integer, or a JSON number like 3.0."""
    F = _f()
    whole_text = F.trim(_text(name)).rlike(r"^\+?[0-9]+$")
    integral_number = (_kind(name) == NUMBER) & F.expr(
        f"try_cast({name} as decimal(38, 10)) = floor(try_cast({name} as decimal(38, 10)))"
    )
    number = F.expr(f"try_cast(try_cast(trim({name}) as decimal(38, 10)) as bigint)")
    ok = (whole_text | integral_number) & number.isNotNull() & (number >= 0)
    return number, ~ok


def _environment() -> Any:
    F = _f()
    pairs = []
    for key, value in ENVIRONMENTS.items():
        pairs += [F.lit(key), F.lit(value)]
    lookup = F.create_map(*pairs)
    return F.coalesce(
        F.element_at(lookup, _text("environment")),
        F.element_at(lookup, F.lower(F.trim(_text("environment")))),
    )


def _utc_iso(ts: Any) -> Any:
    """Python's datetime.isoformat() of a naive UTC time: microseconds only when not zero."""
    F = _f()
    micros = F.expr("unix_micros(_ts)") % 1_000_000
    return F.concat(
        F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss"),
        F.when(micros != 0, F.concat(F.lit("."), F.lpad(micros.cast("string"), 6, "0"))).otherwise(
            F.lit("")
        ),
    )


def events(values: Any) -> Any:
    """Every line with `reason` (NULL for a good row) and the raw.api_events columns typed."""
    F = _f()
    ts = _timestamp(_text("occurred_at"))
    latency, bad_latency = _non_negative_float("latency_ms")
    request_bytes, bad_request = _non_negative_int("request_bytes")
    response_bytes, bad_response = _non_negative_int("response_bytes")
    environment = _environment()
    status = F.trim(_text("status_code"))
    good_status = (_kind("status_code").isin(STRING, INTEGER)) & status.rlike("^[1-5][0-9][0-9]$")
    text_columns = ("company_id", "path", "api_key_id", "user_agent", "ip", "event_id")
    rules = [
        (_missing("developer_id"), "missing developer_id"),
        (_kind("developer_id") == NESTED, "bad value"),
        (_missing("occurred_at"), "missing occurred_at"),
        ((_kind("occurred_at") != STRING) | F.col("_ts").isNull(), "unparsable timestamp"),
        (~good_status | _text("status_code").isNull(), "bad status code"),
        (~_missing("latency_ms") & bad_latency, "bad latency_ms"),
        (~_missing("request_bytes") & bad_request, "bad request_bytes"),
        (~_missing("response_bytes") & bad_response, "bad response_bytes"),
        (
            ~_missing("environment") & ((_kind("environment") != STRING) | environment.isNull()),
            "bad environment",
        ),
        (_kind("method") == NESTED, "bad value"),
        *[(_kind(name) == NESTED, "bad value") for name in text_columns],
        (F.instr("raw_text", "\x00") > 0, "NUL byte"),  # PostgreSQL text cannot hold it
    ]
    staged = values.withColumn("_ts", ts)
    method = F.when(_kind("method") == STRING, F.upper(_text("method"))).otherwise(_text("method"))

    def blank_null(name: str) -> Any:
        return F.when(_text(name) != "", _text(name))

    latency_text = F.when(~_missing("latency_ms"), latency.cast("string"))
    bytes_text = {
        "request_bytes": F.when(~_missing("request_bytes"), request_bytes.cast("string")),
        "response_bytes": F.when(~_missing("response_bytes"), response_bytes.cast("string")),
    }
    env = F.when(~_missing("environment"), environment)
    parts = [
        _utc_iso(F.col("_ts")),
        _text("developer_id"),
        blank_null("company_id"),
        F.when(_text("method") != "", method),
        blank_null("path"),
        status,
        latency_text,
        bytes_text["request_bytes"],
        bytes_text["response_bytes"],
        env,
        blank_null("api_key_id"),
        blank_null("user_agent"),
        blank_null("ip"),
    ]
    hashed = F.substring(
        F.sha2(F.concat_ws("\x1f", *[F.coalesce(p, F.lit("")) for p in parts]), 256), 1, 32
    )
    typed = {
        "event_id": F.when(~_missing("event_id"), _text("event_id")).otherwise(hashed),
        "occurred_at": F.col("_ts"),
        "developer_id": _text("developer_id"),
        "company_id": blank_null("company_id"),
        "method": F.when(_text("method") != "", method),
        "path": blank_null("path"),
        "status_code": status.cast("int"),
        "latency_ms": F.when(~_missing("latency_ms"), latency),
        "request_bytes": F.when(~_missing("request_bytes"), request_bytes),
        "response_bytes": F.when(~_missing("response_bytes"), response_bytes),
        "environment": env,
        "api_key_id": blank_null("api_key_id"),
        "user_agent": blank_null("user_agent"),
        "ip": blank_null("ip"),
    }
    assert tuple(typed) == EVENT_COLUMNS
    return staged.select(
        "line_number",
        "raw_text",
        _first_reason(rules).alias(REASON),
        *[column.alias(name) for name, column in typed.items()],
        "extras",
    )


# -- reference tables ----------------------------------------------------------------------------
def _stripped(name: str) -> Any:
    F = _f()
    return F.when(F.trim(_text(name)) != "", F.trim(_text(name)))


def _boolean(name: str, default: bool | None) -> tuple[Any, Any]:
    F = _f()
    word = F.lower(F.trim(_text(name)))
    value = (
        F.when(_missing(name), F.lit(default))
        .when(word.isin(*TRUE), F.lit(True))
        .when(word.isin(*FALSE), F.lit(False))
    )
    bad = ~_missing(name) & ((_kind(name) == NESTED) | ~(word.isin(*TRUE) | word.isin(*FALSE)))
    return value.cast("boolean"), bad


def _optional_ts(name: str) -> tuple[Any, Any]:
    F = _f()
    value = F.when(~_missing(name), _timestamp(F.trim(_text(name))))
    bad = ~_missing(name) & ((_kind(name) != STRING) | value.isNull())
    return value, bad


def reference(kind: str, values: Any) -> Any:
    """Every line with `reason` and the columns of raw.<kind> (developers, incidents, endpoints)."""
    F = _f()
    rules: list[tuple[Any, str]] = []
    typed: dict[str, Any] = {}
    for name, _convert in TABLE_SPECS[kind]:
        nested = (_kind(name) == NESTED, "bad value")
        if name in ("developer_id", "incident_id", "affected_route", "route"):
            rules += [nested, (_stripped(name).isNull(), f"missing {name}")]
            typed[name] = _stripped(name)
        elif name in ("signed_up_at", "ended_at", "updated_at"):
            value, bad = _optional_ts(name)
            rules.append((bad, "unparsable timestamp"))
            typed[name] = value
        elif name == "started_at":
            value, bad = _optional_ts(name)
            rules += [(_missing(name), "missing started_at"), (bad, "unparsable timestamp")]
            typed[name] = value
        elif name == "role":
            rules.append(nested)
            role = F.regexp_replace(F.lower(F.trim(_text(name))), "[- ]", "_")
            typed[name] = F.when(F.coalesce(role, F.lit("")) != "", role).otherwise("unknown")
        elif name == "monthly_quota":
            value, bad = _non_negative_int(name)
            rules.append((~_missing(name) & bad, "bad monthly_quota"))
            typed[name] = F.when(~_missing(name), value)
        elif name in ("marketing_opt_in", "promoted"):
            value, bad = _boolean(name, None if name == "marketing_opt_in" else False)
            rules.append((bad, f"bad {name}"))
            typed[name] = value
        else:
            rules.append(nested)
            typed[name] = _stripped(name)
    rules.append((F.instr("raw_text", "\x00") > 0, "NUL byte"))
    return values.select(
        "line_number",
        "raw_text",
        _first_reason(rules).alias(REASON),
        *[column.alias(name) for name, column in typed.items()],
        "extras",
    )
