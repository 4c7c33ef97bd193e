"""One-click unsubscribe (RFC 8058): a signed token becomes a suppression of its scope.

The token names a ledger row; its address gets a suppression with the token's scope (source
`one-click`), which the next sync applies to marketing mail only. Unknown rows (a preview's link,
a pruned ledger) change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from email_sync.feedback.events import add_suppressions

ONE_CLICK_SOURCE = "one-click"


def recipient_of(conn: sa.Connection, message_id: str) -> str | None:
    """The address a sent message went to, None if the message is unknown."""
    return conn.execute(
        sa.text("select email from email_sync.messages where message_id = :id"),
        {"id": message_id},
    ).scalar_one_or_none()


def unsubscribe(conn: sa.Connection, message_id: str, scope: str) -> str | None:
    """Suppress the recipient of `message_id` for `scope`; returns the address, None if unknown."""
    email = recipient_of(conn, message_id)
    if not email:
        return None
    at = datetime.now(UTC).isoformat()
    add_suppressions(conn, [(email.lower(), "unsubscribe: one-click", scope, at)], ONE_CLICK_SOURCE)
    return email
