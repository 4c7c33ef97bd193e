"""One-way hashes for logs and summaries: an email address or member key never appears in clear."""

from __future__ import annotations

import hashlib


def hash_email(email: str | None) -> str:
    """12 hex chars of sha256 of the lower-cased address (the team-wide log convention)."""
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:12]


def hash_key(key: str) -> str:
    """Hash of a member key, which often embeds a developer id or address."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]
