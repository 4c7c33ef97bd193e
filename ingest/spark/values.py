"""Parsed lines as (text, kind) pairs per column, so one set of rules serves JSON and CSV.

JSON lines are parsed once by Spark's JSON reader into a map of variants (`from_json` with
PERMISSIVE semantics: a line that does not parse gives NULL, never a failed job), which keeps
each value's JSON type: the PostgreSQL loader rejects a nested object where a text column is
expected and a number where a timestamp is, and so must this one. CSV values are all text.
"""

from __future__ import annotations

from typing import Any

# What a value is, as the rules need to know it.
STRING, INTEGER, NUMBER, BOOLEAN, NESTED = "string", "integer", "number", "boolean", "nested"
PARSE_REASON = "parse_reason"  # why a whole line could not be read, else NULL
EXTRAS = "extras"
RAW = "raw_text"


def kind_col(name: str) -> str:
    """The column holding what `name`'s value is (STRING, INTEGER... or NULL when absent)."""
    return f"{name}__kind"


def _variant_kind(v: Any) -> Any:
    from pyspark.sql import functions as F

    schema = F.expr(f"schema_of_variant({v})")
    return (
        F.when(F.expr(f"{v} is null or is_variant_null({v})"), F.lit(None))
        .when(schema == "STRING", F.lit(STRING))
        .when(schema.isin("BIGINT", "INT", "SMALLINT", "TINYINT"), F.lit(INTEGER))
        .when(schema == "BOOLEAN", F.lit(BOOLEAN))
        .when(schema.startswith("OBJECT") | schema.startswith("ARRAY"), F.lit(NESTED))
        .otherwise(F.lit(NUMBER))
    )


def json_values(lines: Any, columns: tuple[str, ...]) -> Any:
    """(line_number, raw_text, parse_reason, <column>, <column>__kind..., extras) per line.

    Blank lines are skipped, as the PostgreSQL loader skips them.

    `extras` holds the keys not in `columns` as JSON text (NULL when there are none).
    """
    from pyspark.sql import functions as F

    parsed = lines.where(F.trim("value") != "").select(
        "line_number",
        F.col("value").alias(RAW),
        F.from_json("value", "map<string,variant>", {"mode": "PERMISSIVE"}).alias("_m"),
    )
    picked = []
    for name in columns:
        v = f"_m['{name}']"
        kind = _variant_kind(v)
        text = F.when(kind.isNotNull(), F.expr(f"cast({v} as string)"))
        picked += [text.alias(name), kind.alias(kind_col(name))]
    known = ", ".join(f"'{name}'" for name in columns)
    rest = F.expr(f"map_filter(_m, (k, v) -> k not in ({known}))")
    extras = F.when(F.size(rest) > 0, F.to_json(rest))
    # Not an object: valid JSON of another shape (an array, a string) rather than a broken line.
    reason = F.when(
        F.col("_m").isNull(),
        F.when(F.expr(f"try_parse_json({RAW}) is not null"), F.lit("not a JSON object")).otherwise(
            F.lit("malformed JSON")
        ),
    )
    return parsed.select(
        "line_number", RAW, reason.alias(PARSE_REASON), *picked, extras.alias(EXTRAS)
    )


def csv_values(lines: Any, header: list[str], header_line: int, columns: tuple[str, ...]) -> Any:
    """The same shape as json_values for the CSV records after the header line.

    Spark's CSV parser (`from_csv`, PERMISSIVE, with a corrupt-record column) reads each line;
    a record of another width than the header is corrupt. A quoted field spanning lines is not
    joined here: its lines are rejected as "broken CSV quoting".
    """
    from pyspark.sql import functions as F

    width = len(header)
    schema = ", ".join(f"`c{i}` string" for i in range(width)) + ", `_corrupt` string"
    options = {
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": "_corrupt",
        "escape": '"',  # quotes inside a quoted field are doubled, as Python's csv writes them
    }
    rows = lines.where((F.col("line_number") > header_line) & (F.col("value") != "")).select(
        "line_number",
        F.col("value").alias(RAW),
        F.from_csv("value", schema, options).alias("_r"),
    )
    # As Python's csv module in strict mode reads a record: a field is either unquoted (and does
    # not start with a quote) or wholly quoted, with inner quotes doubled.
    field = r'(?:[^,"][^,]*+|"(?:[^"]++|"")*+")?'
    well_quoted = F.col(RAW).rlike(f"^{field}(?:,{field})*+$")
    broken = (F.instr(RAW, '"') > 0) & ~well_quoted
    reason = F.when(broken, F.lit("broken CSV quoting")).when(
        F.col("_r._corrupt").isNotNull(), F.lit("wrong number of fields")
    )
    picked = []
    for name in columns:
        if name in header:
            text = F.col(f"_r.c{header.index(name)}")
            kind = F.when(text.isNotNull(), F.lit(STRING))
        else:
            text = kind = F.lit(None).cast("string")
        picked += [text.alias(name), kind.alias(kind_col(name))]
    unknown = [(i, name) for i, name in enumerate(header) if name not in columns]
    if unknown:
        pairs = []
        for i, name in unknown:
            pairs += [F.lit(name), F.col(f"_r.c{i}")]
        rest = F.map_filter(F.create_map(*pairs), lambda k, v: v.isNotNull() & (v != ""))
        extras = F.when(F.size(rest) > 0, F.to_json(rest))
    else:
        extras = F.lit(None).cast("string")
    return rows.select(
        "line_number", RAW, reason.alias(PARSE_REASON), *picked, extras.alias(EXTRAS)
    )
