"""Which paths a landing folder or a manifest may name: only those that stay inside it."""

from __future__ import annotations

from pathlib import Path


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, with `..` and every symbolic link resolved, lies within `root` (resolved).

    A manifest entry `../../etc/passwd`, or a symlink in the landing folder that points
    elsewhere, would otherwise load (and store in raw.load_rejects) a file nobody put there.
    """
    return path.resolve().is_relative_to(root.resolve())
