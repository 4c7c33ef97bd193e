"""Creates the email_sync schema (membership state, ledger, runs, suppressions)."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa


def schema_ddl() -> str:
    """The DDL of the email_sync schema (schema.sql beside this module)."""
    return files("email_sync").joinpath("schema.sql").read_text()


def ensure_email_schema(conn: sa.Connection) -> None:
    """Run the idempotent DDL on `conn` (inside the caller's transaction, so a dry run rolls it
    back with everything else). An advisory lock stops two first syncs racing on CREATE."""
    conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('onramp.email_sync_schema'))"))
    # Columns and tables added later (suppression scope and pulls, sequence progress, import jobs)
    # make an older schema re-run the idempotent DDL, which only adds.
    exists = conn.execute(
        sa.text(
            "select count(*) = 4 from information_schema.columns where table_schema = 'email_sync'"
            " and ((table_name = 'suppressions' and column_name = 'scope')"
            " or (table_name = 'segment_membership' and column_name = 'goal_met_at_entry')"
            " or (table_name = 'contact_imports' and column_name = 'job_id')"
            " or (table_name = 'suppression_pulls' and column_name = 'provider'))"
        )
    ).scalar_one()
    if not exists:
        conn.exec_driver_sql(schema_ddl())
