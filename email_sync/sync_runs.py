"""`email_sync.sync_runs`: one row per (non-dry) sync with its status and counts."""

from __future__ import annotations

import logging
from datetime import date

import sqlalchemy as sa

from email_sync.result import SyncResult

log = logging.getLogger(__name__)


def start_run(conn: sa.Connection, segment: str, as_of: date, provider: str) -> int:
    """Insert the `running` row and return its run id (the ledger rows of this run carry it)."""
    with conn.begin():
        # We hold the segment lock, so any other "running" row is a run that died.
        conn.execute(
            sa.text(
                "update email_sync.sync_runs set status = 'crashed', finished_at = now() "
                "where segment = :seg and status = 'running'"
            ),
            {"seg": segment},
        )
        return conn.execute(
            sa.text(
                "insert into email_sync.sync_runs (segment, as_of, provider, status) "
                "values (:seg, :as_of, :provider, 'running') returning run_id"
            ),
            {"seg": segment, "as_of": as_of, "provider": provider},
        ).scalar_one()


def finish_run(
    conn: sa.Connection, run_id: int, status: str, r: SyncResult, message: str | None
) -> None:
    """Record how the run ended; never raises, so the original error is the one reported."""
    try:
        conn.rollback()
        with conn.begin():
            conn.execute(
                sa.text(
                    """
                    update email_sync.sync_runs set status = :status, finished_at = now(),
                        members = :members, entered = :entered, exited = :exited, sent = :sent,
                        suppressed = :suppressed, failed = :failed, capped = :capped,
                        skipped = :skipped, unconfirmed = :unconfirmed,
                        list_added = :list_added, list_removed = :list_removed,
                        message = :message
                    where run_id = :run_id
                    """
                ),
                {
                    "status": status,
                    "run_id": run_id,
                    "message": message,
                    "members": r.members,
                    "entered": r.entered,
                    "exited": r.exited,
                    "sent": r.sent,
                    "suppressed": r.suppressed,
                    "failed": r.failed,
                    "capped": r.capped,
                    "skipped": r.skipped,
                    "unconfirmed": r.unconfirmed,
                    "list_added": r.list_added,
                    "list_removed": r.list_removed,
                },
            )
    except sa.exc.DBAPIError:
        log.warning("could not record the end of sync run %s", run_id, exc_info=True)
