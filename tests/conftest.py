"""Shared fixtures: one embedded PostgreSQL per test session, its engine and dbt environment."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def onramp_home() -> Path:
    """A fresh ONRAMP_HOME for the session, so tests never touch a developer's .onramp/.

    Not under pytest's temp root: the embedded PostgreSQL runs as its own system user, which needs
    to traverse every parent folder, and pytest resets its root (/tmp/pytest-of-<user>) to 0700
    whenever another session starts on the machine.
    """
    home = Path(tempfile.mkdtemp(prefix="onramp-tests-"))
    os.environ["ONRAMP_HOME"] = str(home)
    os.environ.pop("ONRAMP_DATABASE_URL", None)
    os.environ.pop("DAGSTER_HOME", None)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(onramp_home: Path) -> str:
    """libpq URL of the session's embedded PostgreSQL (started once, stopped at the end)."""
    import pgserver

    server = pgserver.get_server(onramp_home / "postgres", cleanup_mode="stop")
    url = server.get_uri("postgres")
    os.environ["ONRAMP_DATABASE_URL"] = url
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
def engine(pg_url: str) -> sa.Engine:
    from onramp.warehouse import get_engine

    return get_engine()
