"""Creates the crm_sync schema (confirmed values, rejected records, runs)."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa


def schema_ddl() -> str:
    """The crm_sync schema's DDL, shipped with the package."""
    return files("crm_sync").joinpath("schema.sql").read_text()


def ensure_crm_schema(conn: sa.Connection) -> None:
    """Run the idempotent DDL on `conn` inside the caller's transaction (a dry run rolls it back).
    An advisory lock stops two first pushes racing on CREATE."""
    conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('onramp.crm_sync_schema'))"))
    exists = conn.execute(sa.text("select to_regclass('crm_sync.runs') is not null")).scalar_one()
    if not exists:
        conn.exec_driver_sql(schema_ddl())
