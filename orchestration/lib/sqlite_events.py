"""Dagster's SQLite event log with its connections kept open, for the local instance.

Dagster's `SqliteEventLogStorage` creates a SQLAlchemy engine, opens the file, commits and
disposes the engine for every event it stores, two or three times for an asset event (the run's
file and the cross-run index). A daily run stores some 650 events (dbt's models and tests become
materializations and checks), and at ~15 ms each that was the largest part of Dagster's overhead
over the same work run directly. This subclass keeps one engine per file instead (the index and
the few most recent runs) and remembers which tables exist. Everything else (schema, WAL, the
watchers of the UI) is Dagster's.
Production keeps Dagster's storage in PostgreSQL (README), where none of this applies.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

# Run files whose engine stays open besides the index: a run and the runs the UI reads now.
_OPEN_RUN_FILES = 4


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` that reuses one connection per database file."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteEventLogStorage:
        """Build from dagster.yaml (the parent's method would build a parent instance)."""
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            # One connection per file, used by one thread at a time: _connect holds _db_lock.
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=StaticPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
        self._engines[shard] = engine  # most recently used last
        runs = [name for name in self._engines if name != "index"]
        for stale in runs[:-_OPEN_RUN_FILES]:
            self._engines.pop(stale).dispose()
        return engine

    @contextlib.contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before every asset check event, through a new engine each time; a table
        once there stays (migrations only add), so a yes is remembered."""
        if table_name in self._tables:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables.add(table_name)
        return found

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        """Close the files before Dagster deletes them."""
        self._close_all()
        super().wipe()

    def dispose(self) -> None:
        """Close every kept connection, then Dagster's own clean-up."""
        self._close_all()
        super().dispose()
