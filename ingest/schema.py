"""Creates the raw landing schema; safe to call before every load."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa


def ensure_raw_schema(engine: sa.Engine) -> None:
    ddl = files("ingest").joinpath("raw_schema.sql").read_text()
    with engine.begin() as conn:
        # One advisory lock so two first loads racing do not both create the schema.
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('onramp.raw_schema'))"))
        conn.exec_driver_sql(ddl)
