"""Fixtures for loader tests: the raw schema, a per-test id prefix, small files and table reads.

Tests share the session warehouse with other areas, so they never truncate raw.*: every test
writes ids with its own prefix and reads back only its own rows (by prefix or batch id).
"""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.schema import ensure_raw_schema


@pytest.fixture(scope="session")
def raw_engine(engine: sa.Engine) -> sa.Engine:
    ensure_raw_schema(engine)
    return engine


@pytest.fixture
def uid() -> str:
    """A prefix unique to the test, so files never share a checksum across tests by accident."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(name, text | bytes | list[dict], gz=False) -> path of a small test file."""

    def _write(name: str, content: str | bytes | list[dict[str, Any]], gz: bool = False) -> Path:
        if isinstance(content, list):
            content = "".join(json.dumps(row) + "\n" for row in content)
        data = content.encode() if isinstance(content, str) else content
        if gz:
            data = gzip.compress(data)
        path = tmp_path / name
        path.write_bytes(data)
        # A file that has landed, not one still being written (see test_odd_input for those).
        landed = time.time() - 60
        os.utime(path, (landed, landed))
        return path

    return _write


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def events(engine: sa.Engine, prefix: str) -> list[dict[str, Any]]:
    """The test's events (developer_id starts with the prefix), in occurred_at, event_id order."""
    return rows(
        engine,
        "select * from raw.api_events where developer_id like :p order by occurred_at, event_id",
        p=prefix + "%",
    )


def rejects(engine: sa.Engine, batch_id: int) -> list[tuple[int, str, str]]:
    found = rows(
        engine,
        "select line_number, reason, raw_text from raw.load_rejects"
        " where batch_id = :b order by line_number, reason",
        b=batch_id,
    )
    return [(r["line_number"], r["reason"], r["raw_text"]) for r in found]
