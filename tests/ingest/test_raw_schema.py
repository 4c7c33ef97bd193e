"""ensure_raw_schema() runs before every load and dbt build: once the schema exists it must not
lock raw.api_events, or it would cancel a running autovacuum (and with it BRIN summarization)."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa

from ingest.schema import ensure_raw_schema


def test_rerun_takes_no_lock_that_waits_for_autovacuum(raw_engine: sa.Engine) -> None:
    # autovacuum holds SHARE UPDATE EXCLUSIVE on the table it vacuums; hold the same lock
    impatient = sa.create_engine(
        raw_engine.url, connect_args={"options": "-c lock_timeout=2s"}, poolclass=sa.NullPool
    )
    try:
        with raw_engine.connect() as vacuum_like:
            with vacuum_like.begin():
                for table in ("api_events", "load_batches", "load_rejects"):
                    vacuum_like.execute(
                        sa.text(f"lock table raw.{table} in share update exclusive mode")
                    )
                ensure_raw_schema(impatient)  # raises LockNotAvailable if it waits
        with raw_engine.connect() as conn:
            indexes = conn.execute(
                sa.text("select indexname from pg_indexes where schemaname = 'raw'")
            ).scalars()
            assert {"api_events_event_id", "api_events_occurred_at_brin"} <= set(indexes)
    finally:
        impatient.dispose()


def test_an_older_warehouse_gets_the_new_columns(raw_engine: sa.Engine) -> None:
    ddl = files("onramp").joinpath("raw_schema.sql").read_text()
    with raw_engine.connect() as conn, conn.begin() as tx:  # rolled back: others keep theirs
        conn.exec_driver_sql("alter table raw.developers drop column updated_at cascade")
        conn.exec_driver_sql("alter table raw.load_batches drop column error")
        conn.exec_driver_sql(ddl)
        found = conn.execute(
            sa.text(
                "select table_name, column_name, data_type from information_schema.columns"
                " where table_schema = 'raw' and column_name in ('updated_at', 'error')"
            )
        ).all()
        tx.rollback()
    assert {tuple(row) for row in found} == {
        ("developers", "updated_at", "timestamp with time zone"),
        ("load_batches", "error", "text"),
    }
