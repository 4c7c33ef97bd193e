"""`onramp sync` from the segments dbt built on Spark sends the emails the PostgreSQL build sends.

Each side gets a fresh sync state (its own database on the session's server), so the ledger of
other tests cannot hide a send: the PostgreSQL side reads copies of the PostgreSQL-built segments
(and the raw events its freshness gate reads), the Spark side reads the Spark-built segments
through `onramp sync`'s own copy into its state database.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from tests.dbt.conftest import AS_OF
from tests.spark.conftest import SparkBuilt


def _fresh_database(engine: sa.Engine, name: str) -> str:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"drop database if exists {name} with (force)"))
        conn.execute(sa.text(f"create database {name}"))
    return engine.url.set(database=name).render_as_string(hide_password=False)


def _copy_pg_table(source: sa.Engine, target: sa.Engine, schema: str, table: str) -> None:
    """The table's columns (exact types) and rows into another database, by COPY."""
    rel = f'"{schema}"."{table}"'
    with source.connect() as src, target.begin() as dst:
        columns = src.execute(
            sa.text(
                "select quote_ident(attname) || ' ' || format_type(atttypid, atttypmod) "
                "from pg_attribute where attrelid = to_regclass(:rel) and attnum > 0 "
                "and not attisdropped order by attnum"
            ),
            {"rel": rel},
        ).scalars()
        dst.execute(sa.text(f'create schema if not exists "{schema}"'))
        dst.execute(sa.text(f"create table {rel} ({', '.join(columns)})"))
        raw_src = src.connection.driver_connection
        raw_dst = dst.connection.driver_connection
        with (
            raw_src.cursor().copy(f"copy {rel} to stdout") as out,
            raw_dst.cursor().copy(f"copy {rel} from stdin") as into,
        ):
            for data in out:
                into.write(data)


def _outbox_emails(outbox: Path) -> list[tuple[str, str, str]]:
    """(recipient, subject, text body) of every email, sorted; the unsubscribe token (signed over
    each message's random id) blanked."""
    found = []
    for path in outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",)).get_content()
        found.append((str(msg["To"]), str(msg["Subject"]), re.sub(r"/unsubscribe/\S+", "", text)))
    return sorted(found)


def test_sync_from_spark_built_segments_sends_what_postgres_sends(
    spark_built: SparkBuilt, engine: sa.Engine, tmp_path: Path, monkeypatch: Any
) -> None:
    from cli.main import cli

    with engine.connect() as conn:
        segment_tables = conn.execute(
            sa.text(
                "select table_name from information_schema.tables "
                "where table_schema = 'segments' and table_type = 'BASE TABLE'"
            )
        ).scalars()
        segment_tables = list(segment_tables)
    pg_state = sa.create_engine(_fresh_database(engine, "sync_from_postgres"))
    for table in segment_tables:
        _copy_pg_table(engine, pg_state, "segments", table)
    _copy_pg_table(engine, pg_state, "raw", "api_events")  # the freshness gate reads it
    spark_state_url = _fresh_database(engine, "sync_from_spark")
    args = ["sync", "--as-of", AS_OF.isoformat(), "--initial", "send"]
    runner = CliRunner()

    monkeypatch.setenv("ONRAMP_HOME", str(tmp_path / "postgres"))
    monkeypatch.setenv("ONRAMP_DATABASE_URL", pg_state.url.render_as_string(hide_password=False))
    on_postgres = runner.invoke(cli, args)
    assert on_postgres.exit_code == 0, on_postgres.output

    monkeypatch.setenv("ONRAMP_HOME", str(tmp_path / "spark"))
    monkeypatch.setenv("ONRAMP_WAREHOUSE", "spark")
    monkeypatch.setenv("ONRAMP_STATE_DATABASE_URL", spark_state_url)
    monkeypatch.setattr("onramp.spark.spark_session", lambda settings=None: spark_built.spark)
    on_spark = runner.invoke(cli, args)
    assert on_spark.exit_code == 0, on_spark.output

    first, *rest = on_spark.output.splitlines()
    assert first.startswith("read ") and " segment rows from Spark in " in first
    assert rest == on_postgres.output.splitlines()  # same table of entered / sent per segment
    sent = _outbox_emails(tmp_path / "postgres" / "outbox")
    assert len(sent) > 10
    assert _outbox_emails(tmp_path / "spark" / "outbox") == sent
    pg_state.dispose()
