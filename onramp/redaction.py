"""Secret- and address-free text for every line a person or a log store sees: the CLI's
`error: ...` and Dagster's failure lines use `safe_line`.

Errors quote what they were given: a libpq URL with its password, an SMTP URL with credentials, a
SendGrid key in a header dump, an address in a provider's reply. `safe_line` keeps the first line
of an error and masks all of those. It lives in the core so the command line, orchestration and
every area can use the same function.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

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
# Anything address-shaped (the same loose pattern as email_sync.hashing, which the core cannot
# import): hashed as <email:sha256[:12]> of the lower-cased address, the team-wide convention.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"'@]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _hash_address(match: re.Match[str]) -> str:
    digest = hashlib.sha256(match.group(0).strip().lower().encode()).hexdigest()[:12]
    return f"<email:{digest}>"


def redact_secrets(text: str) -> str:
    """`text` with passwords, keys, tokens and addresses masked (addresses as `<email:hash>`)."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('tail')}", text)
    text = _SENDGRID_KEY.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group('head')}{MASK}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('head')}{MASK}", text)
    return _ADDRESS.sub(_hash_address, text)


def safe_line(exc: BaseException | str, limit: int = 500) -> str:
    """The first line of an error with every secret and address masked: what the CLI prints after
    `error:` and what a Dagster failure line says."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if not first and isinstance(exc, BaseException):
        first = type(exc).__name__
    return redact_secrets(first)[:limit]


# Query parameters that carry an API key in access logs; their values never reach the warehouse.
SECRET_QUERY_PARAMS = frozenset({"api_key", "apikey", "api-key", "access_token"})


def hash_api_key(key: str | None) -> str | None:
    """What is stored for an API key seen in clear (an access log's query string): a stable id
    that groups calls by key without being usable as one."""
    if not key:
        return None
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:24]


def strip_secret_params(url: str) -> str:
    """`url` without its API-key query parameters; every other byte kept as logged."""
    head, sep, query = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = query.partition("#")
    kept = [
        part
        for part in query.split("&")
        if part and unquote(part.split("=", 1)[0]).strip().lower() not in SECRET_QUERY_PARAMS
    ]
    out = head + ("?" + "&".join(kept) if kept else "")
    return out + (hash_sep + fragment if hash_sep else "")
