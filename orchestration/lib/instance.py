"""The local Dagster instance: ``$ONRAMP_HOME/dagster`` (or ``DAGSTER_HOME``) with a dagster.yaml.

`onramp ui` and `onramp demo` both use it, so runs of the demo show up in the UI. The file is
written only when missing: an operator's own dagster.yaml (PostgreSQL storage in production, see
README) is never overwritten.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from onramp.errors import OnrampError
from onramp.settings import Settings

log = logging.getLogger(__name__)

# The pool every asset that pushes to the email provider runs in, and the run tag that names the
# provider account; both are limited to one at a time below.
EMAIL_POOL = "email_provider"
PROVIDER_TAG = "onramp/email_provider"

LOCAL_DAGSTER_YAML = f"""\
# Local Dagster instance for onramp, written by `onramp ui` / `onramp demo` when missing.
# Run, event and schedule storage: SQLite files in this folder (for production, point storage at
# PostgreSQL with dagster-postgres: see README, "Running Dagster in production").
telemetry:
  enabled: false
nux:
  enabled: false

concurrency:
  pools:
    # Every asset that pushes to the email provider runs in pool `{EMAIL_POOL}`: one at a time,
    # across all runs, so two runs never push to the same provider account at once.
    default_limit: 1
    granularity: op
  runs:
    max_concurrent_runs: 2
    tag_concurrency_limits:
      # Runs that sync segments carry {PROVIDER_TAG}=<provider account>; one such run at a time
      # per account is dequeued (the pool above covers runs launched by hand from the UI).
      - key: "{PROVIDER_TAG}"
        value:
          applyLimitPerUniqueValue: true
        limit: 1

run_monitoring:
  # The daemon marks runs whose process died as failed and frees the pool slots they held.
  enabled: true
  free_slots_after_run_end_seconds: 60

run_retries:
  enabled: false

# Dagster's SQLite event log, with each file's connection kept open instead of reopened per event
# (orchestration/lib/sqlite_events.py); same files and layout as Dagster's default.
event_log_storage:
  module: orchestration.lib.sqlite_events
  class: PooledSqliteEventLogStorage
  config:
    base_dir: "{{events_dir}}"
"""


def ensure_dagster_home(settings: Settings | None = None) -> Path:
    """Create the instance folder and its dagster.yaml if missing; return the folder."""
    settings = settings or Settings.from_env()
    home = settings.dagster_home
    try:
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():
            events_dir = (home / "history" / "runs").resolve()
            config.write_text(LOCAL_DAGSTER_YAML.replace("{events_dir}", str(events_dir)))
            log.info("wrote %s", config)
    except OSError as exc:
        raise OnrampError(f"cannot prepare the Dagster instance in {home}: {exc.strerror}") from exc
    return home


def provider_account(settings: Settings) -> str:
    """A stable, secret-free name for the provider account a run pushes to (for the run tag): a
    salted hash that never includes a key or the SMTP password (email_sync.redaction)."""
    from email_sync.redaction import provider_account as account

    return account(settings)


def _sqlite_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


def fast_local_storage() -> None:
    """SQLite storage of the local instance without an fsync per event.

    Dagster opens, commits and closes its SQLite files once per event (a run of the whole graph
    stores hundreds), and each commit's fsync costs tens of milliseconds on a busy disk: most of
    Dagster's overhead over the same work run directly. Without the fsync a crash of the machine
    (not of a run) can lose the latest events of the local instance; production keeps Dagster's
    storage in PostgreSQL, where this does not apply. Only SQLite connections are touched (nothing
    else of onramp uses SQLite).
    """
    if not sa.event.contains(sa.engine.Engine, "connect", _sqlite_without_fsync):
        sa.event.listen(sa.engine.Engine, "connect", _sqlite_without_fsync)
