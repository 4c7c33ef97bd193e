"""Fixtures for crm_sync: one database of our own, the sample data built once through dbt up to the
pump models, a pristine copy of the pumps restored before every test, and a local HubSpot server
the official client talks to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_sync.specs import PumpSpec, load_pump_specs
from tests.support.hubspot_server import HubSpotServer, hubspot_server  # noqa: F401

AS_OF = date(2026, 11, 26)
TEST_DB = "onramp_crm_sync_tests"
PUMPS = ("pump_hubspot_contacts", "pump_hubspot_companies")


@pytest.fixture(scope="session")
def crm_db_url(pg_url: str) -> Iterator[str]:
    """A database of our own: these tests rewrite pump tables and the crm_sync schema."""
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
def engine(crm_db_url: str) -> Iterator[sa.Engine]:
    """Shadows the root `engine`: everything in tests/crm_sync runs in its own database."""
    from onramp.warehouse import sqlalchemy_url

    eng = sa.create_engine(sqlalchemy_url(crm_db_url))
    yield eng
    eng.dispose()


@dataclass
class Pumps:
    manifest: Path
    specs: list[PumpSpec]
    as_of: date


@pytest.fixture(scope="session")
def pumps(
    engine: sa.Engine, crm_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pumps]:
    """Sample data (60 developers, 35 days) loaded and built with dbt once, up to the pumps (and
    the pumps' own tests); the built pumps are copied to crm_test_copy for per-test restores."""
    from ingest.loader import load_manifest_dir
    from ingest.schema import ensure_raw_schema
    from onramp.dbt import run_dbt
    from sample_data import generate

    saved = {
        k: os.environ.get(k) for k in ("ONRAMP_DATABASE_URL", "DBT_TARGET_PATH", "DBT_LOG_PATH")
    }
    work = tmp_path_factory.mktemp("crm_dbt")
    os.environ.update(
        ONRAMP_DATABASE_URL=crm_db_url,
        DBT_TARGET_PATH=str(work / "target"),
        DBT_LOG_PATH=str(work / "logs"),
    )
    try:
        sample = tmp_path_factory.mktemp("crm_sample")
        generate(sample, developers=60, days=35, seed=7, as_of=AS_OF)
        ensure_raw_schema(engine)
        load_manifest_dir(engine, sample)
        run_dbt(["run", "--select", "+pumps"], as_of=AS_OF)
        run_dbt(["test", "--select", "pumps"], as_of=AS_OF)
        manifest = work / "target" / "manifest.json"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema if exists crm_test_copy cascade"))
        conn.execute(sa.text("create schema crm_test_copy"))
        for pump in PUMPS:
            conn.execute(
                sa.text(f"create table crm_test_copy.{pump} as select * from pumps.{pump}")
            )
    yield Pumps(manifest=manifest, specs=load_pump_specs(manifest), as_of=AS_OF)


@pytest.fixture
def fresh(
    pumps: Pumps, engine: sa.Engine, crm_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Pumps:
    """Pumps as dbt built them and no crm_sync state: every test starts from a first push."""
    monkeypatch.setenv("ONRAMP_DATABASE_URL", crm_db_url)
    monkeypatch.setenv("DBT_TARGET_PATH", str(pumps.manifest.parent))
    monkeypatch.setenv("ONRAMP_BLAST_RADIUS_MIN_MEMBERS", "10")
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema if exists crm_sync cascade"))
        for pump in PUMPS:
            conn.execute(sa.text(f"truncate pumps.{pump}"))
            conn.execute(sa.text(f"insert into pumps.{pump} select * from crm_test_copy.{pump}"))
    return pumps


@pytest.fixture
def hubspot_env(hubspot_server: HubSpotServer, monkeypatch: pytest.MonkeyPatch) -> HubSpotServer:  # noqa: F811
    """Settings.from_env() points at the local server with its token."""
    for key, value in hubspot_server.env().items():
        monkeypatch.setenv(key, value)
    return hubspot_server
