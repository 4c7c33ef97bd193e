"""`onramp sync` with the Spark warehouse: the segment tables cross from Spark into the state
PostgreSQL in Arrow batches (a swap per table), and the same emails go out, exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import logging
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from email_sync.segment_lock import segment_lock
from email_sync.spark_mirror import (
    Relation,
    mirror_for_sync,
    mirror_relation,
    relations_for,
)
from email_sync.specs import resolve_goals, spec_from_meta
from onramp import spark_copy
from onramp.freshness import spark_events_freshness
from onramp.settings import Settings
from onramp.spark_copy import arrow_batches
from tests.email_sync.conftest import member
from tests.email_sync.test_commands import write_manifest
from tests.email_sync.test_sequences import seq_spec

# Spark database (and PostgreSQL schema of the copies) of these tests: the Spark session is one
# per process, so in a whole-suite run the dbt-on-Spark tests' `segments` must stay theirs.
DB = "spark_sync_tests"

PG_TO_ARROW = {
    "text": "string",
    "boolean": "bool_",
    "integer": "int32",
    "bigint": "int64",
    "date": "date32",
}


@pytest.fixture(scope="session")
def spark(onramp_home: Path) -> Any:
    """The process's Spark session (one per test session: it costs seconds to start)."""
    from onramp.spark import java_problem, spark_session

    problem = java_problem()
    if problem:
        pytest.skip(problem)
    # py4j logs its connections closing at interpreter exit, after the CLI's log file (under the
    # session's ONRAMP_HOME) is gone
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = spark_session(dataclasses.replace(Settings.from_env(), home=onramp_home))
    session.sql(f"create database if not exists {DB}")
    return session


@pytest.fixture(autouse=True)
def clean_spark_copies(engine: sa.Engine) -> None:
    """The copies these tests make in PostgreSQL live in their own schema, dropped first."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"drop schema if exists {DB} cascade"))


def pg_to_spark(engine: sa.Engine, spark: Any, table: str) -> None:
    """Copy segments.<table> from PostgreSQL to a Parquet table of the same name in DB on Spark,
    typed from PostgreSQL's columns (as dbt on Spark would leave it)."""
    import pyarrow as pa

    with engine.connect() as conn:
        types = conn.execute(
            sa.text(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'segments' and table_name = :t order by ordinal_position"
            ),
            {"t": table},
        ).all()
        rows = conn.execute(sa.text(f"select * from segments.{table}")).mappings().all()

    def arrow_type(pg: str) -> Any:
        if pg == "timestamp with time zone":
            return pa.timestamp("us", tz="UTC")
        if pg == "numeric":
            return pa.decimal128(12, 2)
        return getattr(pa, PG_TO_ARROW[pg])()

    schema = pa.schema([(name, arrow_type(pg)) for name, pg in types])
    data = pa.Table.from_pylist([dict(r) for r in rows], schema=schema)
    frame = spark.createDataFrame(data) if rows else spark.createDataFrame([], _spark_schema(data))
    frame.write.mode("overwrite").format("parquet").saveAsTable(f"{DB}.{table}")


def _spark_schema(data: Any) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(data.schema)


def pg_rows(engine: sa.Engine, relation: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"select * from {relation} order by 1"))]


def pg_types(engine: sa.Engine, table: str) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.text(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = :s and table_name = :t"
                ),
                {"s": DB, "t": table},
            ).all()
        )


def test_a_sync_reads_its_segments_and_their_campaigns_goal_segments():
    nurture = seq_spec("nurture", goal={"enters": "production"})
    listed = spec_from_meta("stage_sandbox", {"list": "Sandbox"})
    known = {n: f'"segments"."seg_{n}"' for n in ("nurture", "production", "stage_sandbox")}

    relations = relations_for(resolve_goals([nurture, listed], known))

    assert relations == [
        Relation("segments", "seg_nurture", "nurture"),
        Relation("segments", "seg_stage_sandbox", "stage_sandbox"),
        Relation("segments", "seg_production"),  # read by the goal check, not synced: no lock
    ]


def test_mirror_swaps_in_spark_table_with_its_types_and_keeps_it_on_a_crash(
    engine, spark, segments, monkeypatch
):
    """One Spark table of every type a segment uses replaces an older copy; a failure in the
    middle of the next copy leaves that copy whole; an empty table crosses as an empty table."""
    with engine.begin() as conn:  # yesterday's copy, other columns
        conn.execute(sa.text(f"create schema {DB}"))
        conn.execute(sa.text(f"create table {DB}.seg_typed as select 'old' as member_key, 1 as n"))
    spark.sql(f"drop table if exists {DB}.seg_typed")
    spark.sql(
        f"""
        create table {DB}.seg_typed using parquet as
        select * from values
            ('k1', true, 7, 10000000000L, date'2026-11-02', timestamp'2026-11-02 10:30:00',
             cast(12.50 as decimal(12,2)), 0.25d, array('a', 'b'), 'plain', X'6162'),
            ('k2', null, null, null, null, null, null, null, null, '', null),
            ('k3', false, -1, 0L, date'2026-01-01', timestamp'2026-01-01 00:00:00.123456',
             cast(-0.01 as decimal(12,2)), 1e20d, array(), 'a, "quoted"\nline', X'')
            as t(member_key, opt_in, days, calls, signup_day, last_call_at, pct, ratio, tags,
                 note, raw)
        """
    )
    rel = Relation(DB, "seg_typed", "typed")
    typed_spec = spec_from_meta("typed", {"list": "Typed"}, schema=DB, table="seg_typed")

    assert mirror_relation(engine, spark, rel) == 3

    utc = dt.UTC
    assert pg_rows(engine, f"{DB}.seg_typed") == [
        (
            "k1",
            True,
            7,
            10_000_000_000,
            dt.date(2026, 11, 2),
            dt.datetime(2026, 11, 2, 10, 30, tzinfo=utc),
            Decimal("12.50"),
            0.25,
            ["a", "b"],
            "plain",
            b"ab",
        ),
        ("k2", None, None, None, None, None, None, None, None, "", None),
        (
            "k3",
            False,
            -1,
            0,
            dt.date(2026, 1, 1),
            dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=utc),
            Decimal("-0.01"),
            1e20,
            [],
            'a, "quoted"\nline',
            b"",
        ),
    ]
    assert pg_types(engine, "seg_typed") == {
        "member_key": "text",
        "opt_in": "boolean",
        "days": "integer",
        "calls": "bigint",
        "signup_day": "date",
        "last_call_at": "timestamp with time zone",
        "pct": "numeric",
        "ratio": "double precision",
        "tags": "jsonb",
        "note": "text",
        "raw": "bytea",
    }

    # Nothing rewritten on Spark since: the next sync reads nothing; a write there changes that.
    unchanged = mirror_for_sync(engine, Settings.from_env(), [typed_spec], spark=spark)
    assert unchanged.unchanged == [f"{DB}.seg_typed"] and unchanged.tables == {}
    spark.sql(f"insert into {DB}.seg_typed (member_key) values ('k4')")

    # A crash after the first batch has reached PostgreSQL: the copy above stands, whole.
    def crashing(frame):
        yield from list(arrow_batches(frame))[:1]
        raise RuntimeError("executor lost")

    monkeypatch.setattr(spark_copy, "arrow_batches", crashing)
    crashed = mirror_for_sync(engine, Settings.from_env(), [typed_spec], spark=spark)
    monkeypatch.undo()
    why = crashed.failed[f"{DB}.seg_typed"]
    assert why == (
        f"copying {DB}.seg_typed from Spark failed, the previous copy stands: executor lost"
    )
    assert crashed.unusable([typed_spec]) == {"typed": why}  # `onramp sync` skips it, exits 1
    assert len(pg_rows(engine, f"{DB}.seg_typed")) == 3  # not k4
    with engine.connect() as conn:
        leftovers = conn.execute(
            sa.text("select count(*) from pg_tables where tablename like '%spark_new%'")
        ).scalar_one()
    assert leftovers == 0

    # A sync of the segment is running elsewhere: its table is left alone, not swapped under it.
    with engine.connect() as other, segment_lock(other, "typed", wait=False):
        busy = mirror_for_sync(engine, Settings.from_env(), [typed_spec], spark=spark)
    assert busy.busy == ["typed"] and busy.tables == {}
    assert "being synced, not refreshed: typed" in busy.describe()

    # Spark's own error mid-stream (the JVM fails the job) surfaces, too.
    with pytest.raises(Exception, match="boom"):
        list(arrow_batches(spark.range(3).selectExpr("raise_error('boom') as x")))

    spark.sql(f"truncate table {DB}.seg_typed")
    assert mirror_relation(engine, spark, rel) == 0
    assert pg_rows(engine, f"{DB}.seg_typed") == []
    assert "tags" in pg_types(engine, "seg_typed")

    # Gone from Spark: the stale copy goes too, so the sync says the segment is missing.
    spark.sql(f"drop table {DB}.seg_typed")
    assert mirror_relation(engine, spark, rel) is None
    assert pg_types(engine, "seg_typed") == {}


def outbox_emails(outbox_dir: Path) -> list[tuple[str, str, str]]:
    """(recipient, subject, text body) of every email in the outbox, sorted; the unsubscribe
    token, signed over each message's random id, is blanked."""
    out = []
    for path in outbox_dir.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = re.sub(r"/unsubscribe/[^?\s]+", "/unsubscribe/TOKEN", body.get_content())
        out.append((str(msg["To"]), str(msg["Subject"]), text))
    return sorted(out)


SEGMENTS = ("new_signups", "quota_exceeded", "stage_sandbox")


def test_sync_from_spark_sends_the_same_emails_as_from_postgres_exactly_once(
    engine, spark, segments, tmp_path, monkeypatch, onramp_home
):
    manifest = write_manifest(tmp_path / "manifest.json")
    monkeypatch.setattr("email_sync.commands.find_manifest", lambda: manifest)
    quota = {"monthly_quota": "bigint", "quota_used_pct": "numeric", "last_call_at": "timestamptz"}
    segments.create(
        "new_signups",
        [member(1), member(2, marketing_opt_in=False), member(3, email="not-an-address")],
    )
    segments.create(
        "quota_exceeded",
        [
            member(
                n,
                monthly_quota=10_000,
                quota_used_pct=Decimal("104.50"),
                last_call_at=dt.datetime(2026, 11, 25, 8, tzinfo=dt.UTC),
            )
            for n in (4, 5)
        ],
        quota,
    )
    segments.create("stage_sandbox", [member(6, stage="sandbox")], {"stage": "text"})
    runner = CliRunner()
    args = ["sync", "--as-of", "2026-11-26"]

    monkeypatch.setenv("ONRAMP_HOME", str(tmp_path / "pg_home"))
    on_postgres = runner.invoke(cli, args)
    assert on_postgres.exit_code == 0, on_postgres.output
    preview = ["preview", "quota_exceeded", "--developer", "dev-0005"]
    preview_on_postgres = runner.invoke(cli, preview)
    assert preview_on_postgres.exit_code == 0, preview_on_postgres.output
    pg_emails = outbox_emails(tmp_path / "pg_home" / "outbox")
    assert len(pg_emails) == 3  # 1 welcome (one without consent, one invalid) + 2 quota emails

    # The same segments built on Spark; PostgreSQL keeps only a fresh, empty sync state.
    for name in SEGMENTS:
        pg_to_spark(engine, spark, f"seg_{name}")
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema segments cascade"))
        conn.execute(sa.text("drop schema email_sync cascade"))
    on_spark_manifest = json.loads(manifest.read_text())
    for node in on_spark_manifest["nodes"].values():
        node["schema"] = DB
    manifest.write_text(json.dumps(on_spark_manifest))
    monkeypatch.setenv("ONRAMP_HOME", str(tmp_path / "spark_home"))
    monkeypatch.setenv("ONRAMP_WAREHOUSE", "spark")
    monkeypatch.setattr("onramp.spark.spark_session", lambda settings=None: spark)

    on_spark = runner.invoke(cli, args)

    assert on_spark.exit_code == 0, on_spark.output
    assert on_spark.output.splitlines()[0].startswith("read 6 segment rows from Spark in ")
    assert on_spark.output.splitlines()[1:] == on_postgres.output.splitlines()
    assert outbox_emails(tmp_path / "spark_home" / "outbox") == pg_emails
    lists = tmp_path / "spark_home" / "outbox" / "lists"
    assert sorted(p.name for p in lists.iterdir()) == sorted(
        p.name for p in (tmp_path / "pg_home" / "outbox" / "lists").iterdir()
    )

    preview_on_spark = runner.invoke(cli, preview)  # one row read on Spark, nothing copied
    assert preview_on_spark.output == preview_on_postgres.output
    assert "its 10,000 calls for this month (104% used)" in preview_on_spark.output

    again = runner.invoke(cli, args)

    assert again.exit_code == 0, again.output
    assert again.output.startswith("read 0 segment rows from Spark in ")
    assert "unchanged since the last copy: spark_sync_tests.seg_quota_exceeded, " in again.output
    assert outbox_emails(tmp_path / "spark_home" / "outbox") == pg_emails  # nothing new
    rows = [line.split() for line in again.output.splitlines()[4:7]]
    assert {r[0]: r[4] for r in rows} == dict.fromkeys(SEGMENTS, "0")  # sent: 0
    index = tmp_path / "spark_home" / "outbox" / "index.jsonl"
    assert len([json.loads(line) for line in index.read_text().splitlines()]) == 3


def test_raw_event_freshness_is_read_on_spark(spark):
    spark.sql(f"drop table if exists {DB}.api_events")
    spark.sql(
        f"create table {DB}.api_events using parquet as select * from values "
        "(timestamp'2026-11-26 21:15:00'), (timestamp'2026-11-27 03:00:00') as t(occurred_at)"
    )
    settings = Settings.from_env()

    fresh = spark_events_freshness(settings, dt.date(2026, 11, 26), 24, table=f"{DB}.api_events")
    stale = spark_events_freshness(settings, dt.date(2026, 11, 30), 24, table=f"{DB}.api_events")
    none = spark_events_freshness(settings, dt.date(2026, 11, 26), 24, table=f"{DB}.nothing")

    assert fresh.latest_event_at == dt.datetime(2026, 11, 26, 21, 15, tzinfo=dt.UTC)  # not the 27th
    assert fresh.fresh and not stale.fresh
    assert none.latest_event_at is None and not none.fresh


def test_spark_connect_reads_slices_holding_every_row_once(spark, monkeypatch):
    """Without a JVM handle (Spark Connect) the table is read in hash slices."""
    monkeypatch.setattr(spark_copy, "SLICE_ROWS", 4)
    frame = spark.range(10).selectExpr("concat('k', id) as member_key", "id")

    batches = list(spark_copy._sliced_batches(frame))

    keys = [k for b in batches for k in b.column("member_key").to_pylist()]
    assert sorted(keys) == sorted(f"k{i}" for i in range(10))
