"""One-way hashes for logs and summaries: an email address or member key never appears in clear."""

from __future__ import annotations

import hashlib
import re

# Loose on purpose: anything address-shaped in free text (a provider's error message, an SMTP
# reply) is hashed, valid or not.
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>()\[\],;:\"'@]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def hash_email(email: str | None) -> str:
    """12 hex chars of sha256 of the lower-cased address (the team-wide log convention)."""
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:12]


def hash_key(key: str) -> str:
    """Hash of a member key, which often embeds a developer id or address."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def redact_addresses(text: str) -> str:
    """`text` with every address replaced by `<email:hash>`: SendGrid quotes the offending
    address in some errors ("duplicate instance of [x@y]"), and SMTP servers in their replies."""
    return _ADDRESS_IN_TEXT.sub(lambda m: f"<email:{hash_email(m.group(0))}>", text)
