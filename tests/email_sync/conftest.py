"""Fixtures for email_sync: small hand-made segment tables (no dbt), settings per test, providers
pointed at the local SendGrid / SMTP servers, and a clean email_sync schema for every test."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from email_sync.providers import RetryPolicy
from email_sync.providers.outbox import OutboxProvider
from email_sync.providers.sendgrid import SendGridProvider
from email_sync.schema import ensure_email_schema
from email_sync.specs import SegmentSpec, spec_from_meta
from onramp.settings import Settings
from tests.support.sendgrid_server import SendGridServer, sendgrid_server  # noqa: F401
from tests.support.smtp_server import smtp_server  # noqa: F401

BASE_COLUMNS = {
    "member_key": "text primary key",
    "developer_id": "text",
    "email": "text",
    "name": "text",
    "role": "text",
    "company_name": "text",
    "marketing_opt_in": "boolean",
}


def member(n: int, **extra: Any) -> dict[str, Any]:
    """A segment row for developer n, consenting, with a valid address."""
    row = {
        "member_key": f"dev-{n:04d}",
        "developer_id": f"dev-{n:04d}",
        "email": f"dev{n}@example.com",
        "name": f"Dev {n} Person",
        "role": "engineering",
        "company_name": f"Company {n % 7}",
        "marketing_opt_in": True,
    }
    row.update(extra)
    return row


class Segments:
    """Create / change segments.seg_<name> tables the way dbt would leave them."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, name: str, rows: list[dict[str, Any]], columns: dict[str, str] | None = None):
        cols = {**BASE_COLUMNS, **(columns or {})}
        with self.engine.begin() as conn:
            conn.execute(sa.text("create schema if not exists segments"))
            conn.execute(sa.text(f"drop table if exists segments.seg_{name}"))
            conn.execute(
                sa.text(
                    f"create table segments.seg_{name} ("
                    + ", ".join(f"{c} {t}" for c, t in cols.items())
                    + ")"
                )
            )
        self.replace(name, rows)

    def replace(self, name: str, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"truncate segments.seg_{name}"))
            if rows:
                keys = list(rows[0])
                conn.execute(
                    sa.text(
                        f"insert into segments.seg_{name} ({', '.join(keys)}) values ("
                        + ", ".join(f":{k}" for k in keys)
                        + ")"
                    ),
                    rows,
                )


TEST_DB = "onramp_email_sync_tests"


@pytest.fixture(scope="session")
def email_db_url(pg_url: str) -> Iterator[str]:
    """A database of our own on the session's server: these tests drop and recreate the segments
    and email_sync schemas, which other areas' tests (dbt, Dagster) build in the main database."""
    from urllib.parse import urlsplit, urlunsplit

    from onramp.warehouse import sqlalchemy_url

    admin = sa.create_engine(sqlalchemy_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"drop database if exists {TEST_DB} with (force)"))
        conn.execute(sa.text(f"create database {TEST_DB}"))
    parts = urlsplit(pg_url)
    yield urlunsplit(parts._replace(path=f"/{TEST_DB}"))
    with admin.connect() as conn:
        conn.execute(sa.text(f"drop database if exists {TEST_DB} with (force)"))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(email_db_url: str) -> Iterator[sa.Engine]:
    """Shadows the root `engine`: everything in tests/email_sync runs in its own database."""
    from onramp.warehouse import sqlalchemy_url

    eng = sa.create_engine(sqlalchemy_url(email_db_url))
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def email_db_env(email_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that read Settings.from_env() (the CLI) use the same database."""
    monkeypatch.setenv("ONRAMP_DATABASE_URL", email_db_url)


@pytest.fixture
def segments(engine: sa.Engine) -> Segments:
    return Segments(engine)


@pytest.fixture(autouse=True)
def clean_email_sync(engine: sa.Engine) -> Iterator[None]:
    """Every test starts from an empty email_sync schema and no segments."""
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema if exists email_sync cascade"))
        conn.execute(sa.text("drop schema if exists segments cascade"))
        ensure_email_schema(conn)
    yield


@pytest.fixture
def settings(onramp_home: Path, tmp_path: Path, email_db_url: str) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(
        base, home=tmp_path / "home", database_url=email_db_url, email_provider="outbox"
    )


@pytest.fixture
def outbox(settings: Settings) -> OutboxProvider:
    return OutboxProvider(settings.outbox_dir, settings.email_from)


class RecordingSleep:
    """Stands in for time.sleep in retry policies: records the waits asked for, sleeps briefly."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        import time

        self.waits.append(seconds)
        time.sleep(min(seconds, 0.01))


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def sg_provider(
    sendgrid_server: SendGridServer,  # noqa: F811
    settings: Settings,
    sleeps: RecordingSleep,
) -> SendGridProvider:
    return SendGridProvider(
        api_key=sendgrid_server.api_key,
        sender=settings.email_from,
        host=sendgrid_server.url,
        timeout_s=2.0,
        retry=RetryPolicy(max_retries=3, backoff_base_s=0.01, sleep=sleeps),
    )


def spec(name: str, **meta: Any) -> SegmentSpec:
    return spec_from_meta(name, meta)


def outbox_index(settings: Settings) -> list[dict[str, Any]]:
    path = settings.outbox_dir / "index.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ledger(engine: sa.Engine, segment: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select * from email_sync.messages "
                "where (:seg)::text is null or segment = :seg order by member_key, period"
            ),
            {"seg": segment},
        ).mappings()
        return [dict(r) for r in rows]


def statuses(engine: sa.Engine, segment: str | None = None) -> dict[str, str]:
    return {f"{r['member_key']}/{r['period']}": r["status"] for r in ledger(engine, segment)}
