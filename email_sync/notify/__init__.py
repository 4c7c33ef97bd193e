"""Team notifications: one message per segment and sync run, to Slack or a signed JSON webhook.

`spec` reads `config.meta.onramp.notify`; `record` decides the message inside the sync's
decision transaction; `post` delivers it after the commit, exactly once; `message` renders it.
"""

from email_sync.notify.message import as_text
from email_sync.notify.post import PostOutcome, post_due, sign
from email_sync.notify.record import build_payload, ensure_notify_schema, record
from email_sync.notify.spec import NotifySpec, NotifySpecError, notify_from_meta

__all__ = [
    "NotifySpec",
    "NotifySpecError",
    "PostOutcome",
    "as_text",
    "build_payload",
    "ensure_notify_schema",
    "notify_from_meta",
    "post_due",
    "record",
    "sign",
]
