"""API callers seen in the events that have no developer record: counted in the funnel (dbt's
int_developers_and_callers), never emailed, and named in one line after `onramp build` and
`onramp load` so a team that loaded its logs first knows what to load next."""

from __future__ import annotations

import sqlalchemy as sa

# after a build: dim_developers says it per row (as of the build's day)
_FROM_DIM = "select count(*) from marts.dim_developers where not has_developer_record"
# after a load: the distinct callers of raw.api_events without a row in raw.developers
_FROM_RAW = """
    select count(*)
    from (select distinct developer_id from raw.api_events) as callers
    where not exists (
        select 1 from raw.developers where raw.developers.developer_id = callers.developer_id
    )
"""


def _dim_has_flag(conn: sa.Connection) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "select exists (select 1 from information_schema.columns where table_schema ="
                " 'marts' and table_name = 'dim_developers'"
                " and column_name = 'has_developer_record')"
            )
        ).scalar_one()
    )


def callers_without_record(engine: sa.Engine, *, after_build: bool = False) -> int:
    """How many API callers have no developer record: from marts.dim_developers after a build
    (when it has the column), from the raw tables otherwise (0 when they do not exist yet)."""
    with engine.connect() as conn:
        if after_build and _dim_has_flag(conn):
            return int(conn.execute(sa.text(_FROM_DIM)).scalar_one())
        missing = conn.execute(
            sa.text(
                "select to_regclass('raw.api_events') is null"
                " or to_regclass('raw.developers') is null"
            )
        ).scalar_one()
        if missing:
            return 0
        return int(conn.execute(sa.text(_FROM_RAW)).scalar_one())


def callers_line(count: int) -> str | None:
    """The one line to print, or None when every caller has a developer record."""
    if count <= 0:
        return None
    noun = "API caller has" if count == 1 else "API callers have"
    return (
        f"{count:,} {noun} no developer record: "
        "load your user export with `onramp load developers FILE`"
    )
