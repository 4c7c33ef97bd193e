"""The dbt manifest, found and parsed one way for every reader (`onramp sync`, Dagster, tests).

`target/manifest.json` (or $DBT_TARGET_PATH) is re-parsed, in process, whenever it is missing or
older than any file of the dbt project, so after a YAML edit `onramp sync` and the Dagster code
location see the same segments without anyone remembering to run `dbt parse`. With the Spark
warehouse dbt's artifacts live in a `spark/` folder of that path: a manifest parsed for one engine
(its dispatched macros and per-adapter configs) is never read for the other.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from onramp.errors import OnrampError
from onramp.settings import Settings

log = logging.getLogger(__name__)

# The dbt project root is the repo root (dbt_project.yml); everything dbt reads is in dbt_project/.
PROJECT_DIR = Path(__file__).resolve().parents[1]
PROFILES_DIR = PROJECT_DIR / "dbt_project"
_PROJECT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md"}


def target_dir(settings: Settings | None = None) -> Path:
    """dbt's target path: $DBT_TARGET_PATH (relative to the project) or target/ in the repo, and
    its spark/ folder when the warehouse is Spark."""
    path = Path(os.environ.get("DBT_TARGET_PATH") or "target")
    path = path if path.is_absolute() else PROJECT_DIR / path
    if (settings or Settings.from_env()).warehouse == "spark":
        path = path / "spark"
    return path


def _newest_project_file_mtime() -> float:
    newest = (PROJECT_DIR / "dbt_project.yml").stat().st_mtime
    for path in PROFILES_DIR.rglob("*"):
        if path.suffix in _PROJECT_SUFFIXES and path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def manifest_is_current(settings: Settings | None = None) -> bool:
    """The manifest exists and no project file changed after it was written."""
    path = target_dir(settings) / "manifest.json"
    return path.exists() and path.stat().st_mtime >= _newest_project_file_mtime()


def manifest_path(settings: Settings | None = None) -> Path:
    """Path of a manifest.json that matches the project files, parsing the project if needed."""
    path = target_dir(settings) / "manifest.json"
    if manifest_is_current(settings):
        return path
    from onramp.dbt import run_dbt

    log.info("dbt manifest missing or older than the project files: parsing")
    run_dbt(["parse"], settings=settings)
    if not path.exists():
        raise OnrampError(f"dbt parse did not write {path}")
    return path


_cache: dict[Path, tuple[float, dict[str, Any]]] = {}


def load_manifest(settings: Settings | None = None) -> dict[str, Any]:
    """The current manifest as a dict (read once per version of the file)."""
    path = manifest_path(settings)
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, json.loads(path.read_text()))
        _cache[path] = cached
    return cached[1]
