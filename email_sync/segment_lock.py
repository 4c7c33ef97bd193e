"""The PostgreSQL advisory lock that lets only one sync of a segment run at a time.

A session lock (not a transaction lock) because one sync spans many transactions: the decision,
then one per delivery batch. If the process dies the server drops the lock with the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from email_sync.errors import SegmentBusy

log = logging.getLogger(__name__)

LOCK_CLASS = "onramp.email_sync"


def _lock_ids(segment: str) -> dict[str, str]:
    return {"cls": LOCK_CLASS, "seg": segment}


@contextmanager
def segment_lock(conn: sa.Connection, segment: str, wait: bool) -> Iterator[None]:
    """Hold the segment lock on `conn`; without `wait`, raise SegmentBusy if a run holds it."""
    sql = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    got = conn.execute(
        sa.text(f"select {sql}(hashtext(:cls), hashtext(:seg))"), _lock_ids(segment)
    ).scalar()
    conn.commit()
    if not wait and not got:
        raise SegmentBusy(
            f"segment {segment} is being synced by another run; try again later or pass --wait"
        )
    try:
        yield
    finally:
        _release(conn, segment)


def _release(conn: sa.Connection, segment: str) -> None:
    try:
        conn.rollback()
        conn.execute(
            sa.text("select pg_advisory_unlock(hashtext(:cls), hashtext(:seg))"),
            _lock_ids(segment),
        )
        conn.commit()
    except sa.exc.DBAPIError:  # the connection is gone; the server released the lock with it
        log.debug("advisory unlock failed; connection closed", exc_info=True)
