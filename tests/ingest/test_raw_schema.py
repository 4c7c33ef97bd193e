"""ensure_raw_schema() runs before every load and dbt build: once the schema exists it must not
lock raw.api_events, or it would cancel a running autovacuum (and with it BRIN summarization)."""

from __future__ import annotations

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
