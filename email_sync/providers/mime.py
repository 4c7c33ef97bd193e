"""MIME rendering shared by the outbox and SMTP channels."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

from email_sync.providers.base import OutgoingEmail


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
    for name, value in email.headers.items():
        msg[name] = value
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg
