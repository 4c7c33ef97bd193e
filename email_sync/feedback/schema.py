"""Creates the feedback tables (raw.email_events and its rejects) beside email_sync's own schema.

Call `ensure_feedback_schema` before anything reads `raw.email_events`: the receiver does at
start, and a dbt build must have it before dbt resolves the `sendgrid` source.
"""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa

from email_sync.schema import ensure_email_schema


def feedback_ddl() -> str:
    """The feedback tables' DDL, shipped with the package."""
    return files("email_sync.feedback").joinpath("schema.sql").read_text()


def ensure_feedback_schema(conn: sa.Connection) -> None:
    """Idempotent DDL in the caller's transaction; an advisory lock stops two starts racing.
    The events confirm the ledger and write suppressions, so email_sync's schema comes first."""
    ensure_email_schema(conn)
    conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('onramp.feedback_schema'))"))
    ready = conn.execute(
        sa.text(
            "select to_regclass('raw.email_events') is not null"
            " and to_regclass('raw.email_event_rejects') is not null"
        )
    ).scalar_one()
    if not ready:
        conn.exec_driver_sql(feedback_ddl())


def ensure_feedback_schema_on(engine: sa.Engine) -> None:
    """ensure_feedback_schema in a transaction of its own."""
    with engine.begin() as conn:
        ensure_feedback_schema(conn)
