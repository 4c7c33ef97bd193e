"""Secret- and address-free text for every line a person or a log store sees: failure lines
(the CLI's `error: ...`, Dagster's run failures), and the provider-account run tag.

Errors quote what they were given: a libpq URL with its password, an SMTP URL with credentials, a
SendGrid key in a header dump, an address in a provider's reply. `safe_line` keeps the first line
of an error and masks all of those, so the same function serves the command line and Dagster.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from email_sync.hashing import redact_addresses
from onramp.settings import Settings

MASK = "***"
# scheme://user:password@host -> scheme://user:***@host (postgresql, smtp, http...)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]*(?P<tail>@)", re.I)
# SendGrid keys are SG.<22>.<43>; match loosely so a truncated one is masked too.
_SENDGRID_KEY = re.compile(r"\bSG\.[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]+)?")
_BEARER = re.compile(r"(?P<head>\bBearer\s+)[^\s,;\"']+", re.I)
# password=..., api_key: ..., token=... in conninfo strings, query strings and reprs
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|api[_-]?key|apikey|secret|token|access[_-]?token)"
    r"\s*[=:]\s*['\"]?)[^\s&'\",;]+",
    re.I,
)
SALT_FILE = ".provider_tag_salt"


def redact_secrets(text: str) -> str:
    """`text` with passwords, keys, tokens and addresses masked (addresses as `<email:hash>`)."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('tail')}", text)
    text = _SENDGRID_KEY.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group('head')}{MASK}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('head')}{MASK}", text)
    return redact_addresses(text)


def safe_line(exc: BaseException | str, limit: int = 500) -> str:
    """The first line of an error with every secret and address masked: what the CLI prints after
    `error:` and what a Dagster failure line should say."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if not first and isinstance(exc, BaseException):
        first = type(exc).__name__
    return redact_secrets(first)[:limit]


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
