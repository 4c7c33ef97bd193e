"""What is in the landing folder: which raw files, of which kind, and which are new since last time.

A file's kind (api_events, developers, incidents, endpoints) comes from, in order: a
``manifest.json`` in its folder (the format ``onramp generate`` writes, which also carries format
and caller), the name of a folder it sits in (``landing/api_events/2026-11-26.jsonl.gz``), or the
start of its file name (``developers.csv``, ``api_events-gateway.log``). Anything else is ignored.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.paths import inside

log = logging.getLogger(__name__)

# Load order: reference data first, so a sensor run that brings both loads developers first.
RAW_KINDS = ("developers", "endpoints", "incidents", "api_events")

_IGNORED_NAMES = {"manifest.json", "archetypes.csv"}
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")


@dataclass(frozen=True)
class LandingFile:
    """A raw file of the landing folder, with its kind, format and caller."""

    path: Path
    kind: str
    format: str = "auto"
    caller: str | None = None

    def signature(self) -> str:
        """name + mtime + size: changes when a file is replaced or appended to."""
        stat = self.path.stat()
        return f"{stat.st_mtime_ns}:{stat.st_size}"


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_")


def _kind_from_name(path: Path, root: Path) -> str | None:
    for folder in path.relative_to(root).parts[:-1]:
        if _normalise(folder) in RAW_KINDS:
            return _normalise(folder)
    name = _normalise(path.name)
    for kind in RAW_KINDS:
        if name.startswith(kind):
            return kind
    return None


def _manifest_entries(folder: Path) -> dict[Path, LandingFile]:
    manifest = folder / "manifest.json"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", manifest, exc)
        return {}
    entries: dict[Path, LandingFile] = {}
    for item in data.get("files") or []:
        kind = _normalise(str(item.get("kind") or ""))
        if kind not in RAW_KINDS or not item.get("path"):
            continue
        path = (folder / str(item["path"])).resolve()
        entries[path] = LandingFile(
            path=path,
            kind=kind,
            format=str(item.get("format") or "auto"),
            caller=item.get("caller") or None,
        )
    return entries


def landing_files(root: Path) -> list[LandingFile]:
    """Every raw file under the landing folder with its kind, in load order.

    Load order: by kind (RAW_KINDS), then the files a manifest lists in the manifest's order (as
    `onramp load` loads them), other files by path. The order matters for events: a file whose
    events overlap ones already loaded goes through a staging table (parsed twice), so the
    producer's big first file must not come after its small overlapping ones.
    """
    root = root.resolve()
    if not root.is_dir():
        return []
    from_manifests: dict[Path, LandingFile] = {}
    # (folder, position): where a manifest lists a file; other files sort by their own path
    listed_at: dict[Path, tuple[str, int]] = {}
    for manifest in sorted(root.rglob("manifest.json")):
        entries = _manifest_entries(manifest.parent)
        from_manifests.update(entries)
        for position, path in enumerate(entries):
            listed_at[path] = (str(manifest.parent), position)
    for outside in [p for p in from_manifests if not inside(root, p)]:
        log.warning("ignoring %s: a manifest names it but it is outside %s", outside, root)
        del from_manifests[outside]
    found: list[LandingFile] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name in _IGNORED_NAMES or path.name.startswith("."):
            continue
        if path.name.endswith(_PARTIAL_SUFFIXES):
            continue
        resolved = path.resolve()
        if not inside(root, resolved):  # a symbolic link out of the landing folder
            log.warning("ignoring %s: it leads outside %s", path, root)
            continue
        if resolved in from_manifests:
            found.append(from_manifests[resolved])
            continue
        if (path.parent / "manifest.json").exists():
            continue  # a folder with a manifest lists exactly what to load
        kind = _kind_from_name(path, root)
        if kind:
            found.append(LandingFile(path=resolved, kind=kind))
    return sorted(
        found,
        key=lambda f: (RAW_KINDS.index(f.kind), *listed_at.get(f.path, (str(f.path), 0))),
    )


def new_files(
    root: Path, cursor: dict[str, str], settle_seconds: float = 10.0
) -> tuple[list[LandingFile], dict[str, str]]:
    """Files whose name+mtime+size is not in the cursor, and the cursor after loading them.

    A file modified in the last `settle_seconds` may still be being written: it waits for the
    next tick (and stays out of the new cursor).
    """
    now = time.time()
    fresh: list[LandingFile] = []
    new_cursor = dict(cursor)
    for item in landing_files(root):
        try:
            signature = item.signature()
            mtime = item.path.stat().st_mtime
        except FileNotFoundError:
            continue
        key = str(item.path)
        if cursor.get(key) == signature:
            continue
        if now - mtime < settle_seconds:
            continue
        fresh.append(item)
        new_cursor[key] = signature
    # Files that disappeared from the landing folder leave the cursor, so it does not grow forever.
    live = {str(f.path) for f in landing_files(root)}
    new_cursor = {k: v for k, v in new_cursor.items() if k in live}
    return fresh, new_cursor
