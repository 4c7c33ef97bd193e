"""Unsubscribe links and headers for marketing email, and the settings they need.

A token names the ledger row (hence the recipient) and the unsubscribe scope, signed with HMAC-
SHA256 under ONRAMP_UNSUBSCRIBE_SECRET; it never holds the address. The receiver resolves the row
to its address when the recipient confirms, so a forwarded or scanned link reveals nothing.

Marketing mail needs a public unsubscribe URL base, a secret and a postal address: without them it
is refused with one line. The outbox (the demo) falls back to documented placeholders so a local
run works; they are not fit for real mail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from onramp.errors import OnrampError
from onramp.settings import Settings

MARKETING = "marketing"
TOKEN_VERSION = "1"
# Outbox-only placeholders (documented in README and .env.example).
DEMO_PUBLIC_URL = "http://127.0.0.1:8080"
DEMO_SECRET = "onramp-outbox-demo-secret-not-for-real-mail"
DEMO_POSTAL_ADDRESS = (
    "onramp demo sender, 1 Example Street, Example City (set ONRAMP_POSTAL_ADDRESS)"
)
ONE_CLICK = "List-Unsubscribe=One-Click"


class MarketingNotConfigured(OnrampError):
    """Marketing mail without an unsubscribe URL base, secret or postal address."""


class BadToken(ValueError):
    """An unsubscribe token that is malformed or not signed with our secret."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, scope: str, message_id: str) -> str:
    msg = f"{TOKEN_VERSION}|{scope}|{message_id}".encode()
    return _b64(hmac.new(secret, msg, hashlib.sha256).digest()[:16])


def make_token(secret: str, message_id: str, scope: str = MARKETING) -> str:
    """A signed unsubscribe token for `message_id` and `scope`; read_token reverses it."""
    return f"{scope}.{_b64(message_id.encode())}.{_mac(secret.encode(), scope, message_id)}"


def read_token(secret: str, token: str) -> tuple[str, str]:
    """(message_id, scope) of a token signed with `secret`, else BadToken."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or len(token) > 512:
        raise BadToken("malformed token")
    scope, encoded, mac = parts
    try:
        message_id = _unb64(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadToken("malformed token") from None
    if not hmac.compare_digest(mac, _mac(secret.encode(), scope, message_id)):
        raise BadToken("bad signature")
    return message_id, scope


@dataclass(frozen=True)
class UnsubscribeLinks:
    """Everything a marketing email needs to be unsubscribable and lawful."""

    public_url: str
    secret: str
    postal_address: str
    mailto: str | None = None

    def url(self, message_id: str, scope: str = MARKETING) -> str:
        return f"{self.public_url}/unsubscribe/{make_token(self.secret, message_id, scope)}"

    def headers(self, message_id: str, kind: str) -> dict[str, str]:
        """RFC 2369 List-Unsubscribe (https first, then mailto) + RFC 8058 one-click; none for
        transactional mail, which has no unsubscribe scope."""
        if kind != MARKETING:
            return {}
        targets = [f"<{self.url(message_id)}>"]
        if self.mailto:
            subject = quote(f"unsubscribe {message_id}")
            targets.append(f"<mailto:{self.mailto}?subject={subject}>")
        return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": ONE_CLICK}


def links_from_settings(settings: Settings) -> UnsubscribeLinks | None:
    """The configured links; outbox placeholders where unset; None when marketing is not
    possible with this configuration (see `require_marketing`)."""
    demo = settings.email_provider == "outbox"
    public = settings.public_url or (DEMO_PUBLIC_URL if demo else None)
    secret = settings.unsubscribe_secret or (DEMO_SECRET if demo else None)
    postal = settings.postal_address or (DEMO_POSTAL_ADDRESS if demo else None)
    if not (public and secret and postal):
        return None
    return UnsubscribeLinks(public.rstrip("/"), secret, postal, settings.unsubscribe_mailto)


def require_marketing(settings: Settings) -> UnsubscribeLinks:
    """The links for a marketing send, or MarketingNotConfigured naming what is missing."""
    links = links_from_settings(settings)
    if links is None:
        missing = [
            name
            for name, value in (
                ("ONRAMP_PUBLIC_URL", settings.public_url),
                ("ONRAMP_UNSUBSCRIBE_SECRET", settings.unsubscribe_secret),
                ("ONRAMP_POSTAL_ADDRESS", settings.postal_address),
            )
            if not value
        ]
        raise MarketingNotConfigured(
            f"marketing email refused: set {', '.join(missing)} "
            "(one-click unsubscribe and a postal address are required)"
        )
    if settings.email_provider != "outbox" and not links.public_url.startswith("https://"):
        raise MarketingNotConfigured(
            "marketing email refused: ONRAMP_PUBLIC_URL must be an https:// URL (RFC 8058)"
        )
    return links
