"""One-way hashes for logs and summaries: an email address never appears in clear.

The same convention as the email sync (12 hex chars of sha256 of the lower-cased address), kept
here because crm_sync imports only the core.
"""

from __future__ import annotations

import hashlib
import re

# Loose on purpose: anything address-shaped in free text (a HubSpot error message) is hashed.
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>()\[\],;:\"'@=]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def hash_email(email: str | None) -> str:
    """12 hex chars of sha256 of the lower-cased address."""
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:12]


def hash_key(key: str) -> str:
    """Hash of a record key (an address for contacts, a company id for companies)."""
    return hash_email(key) if "@" in key else hashlib.sha256(key.encode()).hexdigest()[:12]


def redact_addresses(text: str) -> str:
    """`text` with every address replaced by `<email:hash>`: HubSpot quotes the offending address
    in some validation messages, and those reach logs, run rows and the command's output."""
    return _ADDRESS_IN_TEXT.sub(lambda m: f"<email:{hash_email(m.group(0))}>", text)
