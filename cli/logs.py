"""Where log lines go when the `onramp` command runs: a quiet console, a full log file.

The console shows what the command prints itself, plus WARNING and above from our own packages
(say, a landing file that could not be read). Everything else (dbt's and Dagster's INFO and
WARNING lines, Python warnings) goes to $ONRAMP_HOME/logs/onramp.log, and a run's events to the
Dagster UI. `onramp -v` also shows our own INFO lines on the console.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

OUR_PACKAGES = ("onramp", "ingest", "email_sync", "crm_sync", "orchestration", "cli", "sample_data")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _OursOnly(logging.Filter):
    """Let through records of our own packages only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] in OUR_PACKAGES


class _Stderr(logging.StreamHandler):
    """Writes to the current sys.stderr (a test runner may swap it between commands)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Emit to whatever sys.stderr is now."""
        self.stream = sys.stderr
        super().emit(record)


def log_file() -> Path:
    """$ONRAMP_HOME/logs/onramp.log (the folder is created)."""
    from onramp.settings import Settings

    folder = Settings.from_env().home / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "onramp.log"


_installed: list[logging.Handler] = []


def configure_logging(verbose: bool = False) -> None:
    """Console: our own packages at WARNING (INFO with -v); the log file: everyone at INFO.

    Calling it again (one process running several commands, as tests do) replaces the handlers
    it installed before.
    """
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed.clear()
    root.setLevel(logging.INFO)
    console = _Stderr()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.addFilter(_OursOnly())
    console.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(console)
    _installed.append(console)
    try:
        handler: logging.Handler = logging.FileHandler(log_file(), encoding="utf-8")
    except Exception:  # an unusable ONRAMP_HOME or setting is reported by the command itself
        return
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    _installed.append(handler)
    # Deprecation and preview warnings of libraries are for the log file, not the operator.
    logging.captureWarnings(True)
