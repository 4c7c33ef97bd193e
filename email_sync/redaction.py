"""The provider-account run tag (secret-free, salted) and, re-exported from the core, the
secret-free failure line (`safe_line`) that Dagster and the CLI print."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from onramp.redaction import redact_secrets, safe_line
from onramp.settings import Settings

__all__ = ["provider_account", "redact_secrets", "safe_line"]

SALT_FILE = ".provider_tag_salt"


def _salt(settings: Settings) -> bytes:
    """A random per-install salt kept in $ONRAMP_HOME (0600), so a tag cannot be checked against
    guessed accounts (an SMTP user and host are easy to guess)."""
    path = Path(settings.home) / SALT_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(16).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(salt)
    return salt


def provider_account(settings: Settings) -> str:
    """A stable, secret-free name for the provider account a run pushes to (the Dagster run tag
    that serialises runs per account). A salted hash of what identifies the account: SendGrid's
    host and key; SMTP's host, port and user, never the password (changing it keeps the tag)."""
    if settings.email_provider == "sendgrid":
        host = settings.sendgrid_api_host or "api.sendgrid.com"
        raw = f"sendgrid|{host}|{settings.sendgrid_api_key or ''}"
    elif settings.email_provider == "smtp":
        parts = urlsplit(settings.smtp_url or "")
        try:
            port = parts.port
        except ValueError:
            port = None
        raw = f"smtp|{parts.scheme}|{(parts.hostname or '').lower()}|{port}|{parts.username or ''}"
    else:
        return "outbox"
    digest = hashlib.sha256(_salt(settings) + b"|" + raw.encode()).hexdigest()[:12]
    return f"{settings.email_provider}-{digest}"
