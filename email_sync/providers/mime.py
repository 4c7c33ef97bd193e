"""MIME rendering shared by the outbox and SMTP channels."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from email_sync.providers.base import OutgoingEmail

# Headers whose value is a list of <URI>s (RFC 2369) or a fixed token (RFC 8058). The email
# package would fold a long URI into an RFC 2047 encoded-word, which no client can parse, so
# these are written verbatim and folded only between URIs.
VERBATIM_HEADERS = {"list-unsubscribe", "list-unsubscribe-post"}


class _VerbatimHeader(str):
    """A header value the generator writes as is (it calls `fold` on anything with a `name`)."""

    name: str

    def __new__(cls, name: str, value: str) -> _VerbatimHeader:
        if "\r" in value or "\n" in value:
            raise ValueError(f"{name} must be one line")
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: Any) -> str:
        line = f"{self.name}: {self}"
        if len(line) > 78 and ", <" in self:  # fold at the separators only, never inside a URI
            line = f",{policy.linesep} <".join(line.split(", <"))
        return line + policy.linesep


def message_id_header(message_id: str, sender: str) -> str:
    """A Message-ID header built from our message id and the sender's domain."""
    domain = sender.rsplit("@", 1)[-1] or "onramp.local"
    return f"<{message_id}@{domain}>"


def build_mime(email: OutgoingEmail, sender: str) -> EmailMessage:
    """A multipart/alternative message (text first, HTML preferred) carrying the ledger id."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id_header(email.message_id, sender)
    msg["X-Onramp-Message-Id"] = email.message_id
    msg["X-Onramp-Segment"] = email.segment
    msg["X-Onramp-Campaign"] = email.segment
    msg["X-Onramp-Step"] = email.step
    for name, value in email.headers.items():
        if name.lower() in VERBATIM_HEADERS:
            msg.set_raw(name, _VerbatimHeader(name, value))
        else:
            msg[name] = value
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg
