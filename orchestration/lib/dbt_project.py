"""The dbt project as Dagster sees it, and a manifest that matches the files on disk.

The dbt project root is the repo root (``dbt_project.yml``); profiles live in ``dbt_project/``.
Definitions are built from ``target/manifest.json``; when it is missing or older than any file of
the project it is re-parsed first, so adding a segment (one SQL file plus YAML) shows up as a new
asset on the next load with no Python change.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from onramp.errors import OnrampError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROFILES_DIR = REPO_ROOT / "dbt_project"


def _dbt_executable() -> str:
    """dbt from PATH, else the one installed next to this Python (a venv that is not activated)."""
    found = shutil.which("dbt")
    if found:
        return found
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        # dagster-dbt's own preparer (under `dagster dev`) looks dbt up on PATH.
        os.environ["PATH"] = f"{beside.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return str(beside)
    raise OnrampError("the dbt executable was not found: install the project (make install)")


DBT_EXECUTABLE = _dbt_executable()

DBT_PROJECT = DbtProject(project_dir=REPO_ROOT, profiles_dir=DBT_PROFILES_DIR)

_PROJECT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md"}


def _newest_project_file_mtime() -> float:
    newest = (REPO_ROOT / "dbt_project.yml").stat().st_mtime
    for path in DBT_PROFILES_DIR.rglob("*"):
        if path.suffix in _PROJECT_SUFFIXES and path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def manifest_is_current() -> bool:
    manifest = DBT_PROJECT.manifest_path
    return manifest.exists() and manifest.stat().st_mtime >= _newest_project_file_mtime()


def ensure_manifest() -> Path:
    """Path of a manifest.json that matches the project files, running `dbt parse` if needed.

    Under `dagster dev` (`onramp ui`) dagster-dbt's own preparer re-parses on every load. Elsewhere
    (the demo, tests, a deployed code server) the manifest is parsed only when missing or stale;
    a deployment parses it at build time and ships it.
    """
    DBT_PROJECT.prepare_if_dev()
    if manifest_is_current():
        return DBT_PROJECT.manifest_path
    log.info("dbt manifest missing or older than the project files: running dbt parse")
    _parse()
    if not DBT_PROJECT.manifest_path.exists():
        raise OnrampError(f"dbt parse did not write {DBT_PROJECT.manifest_path}")
    return DBT_PROJECT.manifest_path


def _parse() -> None:
    # `dbt parse` renders profiles.yml but never connects: without a configured warehouse,
    # placeholders keep parsing from starting the embedded PostgreSQL just to read the project.
    placeholder = "ONRAMP_PG_HOST" not in os.environ
    if placeholder:
        os.environ["ONRAMP_PG_HOST"] = "localhost"
    try:
        DBT_PROJECT.preparer.prepare(DBT_PROJECT)
    except Exception as exc:  # dagster-dbt raises DagsterDbtCliRuntimeError with dbt's log
        raise OnrampError(f"dbt parse failed: {_error_line(str(exc))}") from exc
    finally:
        if placeholder:
            os.environ.pop("ONRAMP_PG_HOST", None)


def _error_line(text: str) -> str:
    """The line of dbt's output that says what is wrong (dagster-dbt puts it after a preamble)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.endswith("Error") and i + 1 < len(lines):
            return f"{line}: {lines[i + 1]}"
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else "unknown error"
