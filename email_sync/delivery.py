"""Delivery of this run's `pending` ledger rows, and the sample email rendered for the run's
summary.

Rows are rendered first (a broken template fails only its own row), then claimed (stamp
`attempted_at`, committed) and recorded per provider request: SendGrid and SMTP call the
`LedgerTracker` around each HTTP request / SMTP transaction, so a process killed during a 429 wait
or a bisection leaves only the rows of the request in flight for `ledger.reconcile` to mark
`sent_unconfirmed`; the rest stay unclaimed and go out with the next run. Rendering happens here
rather than in the provider so every channel sends the same bytes.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from email_sync.errors import one_line
from email_sync.feedback.headers import unsubscribe_headers
from email_sync.guardrails import INVALID
from email_sync.hashing import hash_key
from email_sync.ledger import record_outcomes
from email_sync.providers import (
    AmbiguousSendError,
    OutgoingEmail,
    Provider,
    ProviderError,
    SendOutcome,
)
from email_sync.render import Renderer, valid_email
from email_sync.result import SyncResult
from email_sync.specs import SegmentSpec


class LedgerTracker:
    """Claims and records ledger rows around each provider request (each its own commit)."""

    def __init__(self, conn: sa.Connection, provider: str) -> None:
        self.conn = conn
        self.provider = provider

    def claim(self, message_ids: Sequence[str]) -> None:
        """Stamp rows attempted before their request goes out: the crash marker reconcile reads."""
        if not message_ids:
            return
        with self.conn.begin():
            self.conn.execute(
                sa.text(
                    """
                    update email_sync.messages set attempts = attempts + 1,
                        attempted_at = now(), provider = :provider, updated_at = now()
                    where message_id = any(:ids) and status = 'pending'
                    """
                ),
                {"ids": list(message_ids), "provider": self.provider},
            )

    def release(self, message_ids: Sequence[str]) -> None:
        """Undo a claim after a definite rejection of the whole request (a 400 before bisecting):
        none of these rows went out, so a crash now must not mark them unconfirmed."""
        if not message_ids:
            return
        with self.conn.begin():
            self.conn.execute(
                sa.text(
                    """
                    update email_sync.messages set attempts = greatest(attempts - 1, 0),
                        attempted_at = null, updated_at = now()
                    where message_id = any(:ids) and status = 'pending'
                    """
                ),
                {"ids": list(message_ids)},
            )

    def record(self, outcomes: list[SendOutcome]) -> None:
        record_outcomes(self.conn, outcomes)


def _next_rows(conn: sa.Connection, run_id: int, after: str, size: int) -> list[Any]:
    """The next `size` unclaimed pending rows of this run after message id `after`."""
    return list(
        conn.execute(
            sa.text(
                """
                select message_id, member_key, email, payload, template, step
                from email_sync.messages
                where run_id = :run and status = 'pending' and attempted_at is null
                  and message_id > :last
                order by message_id limit :batch
                """
            ),
            {"run": run_id, "last": after, "batch": size},
        ).all()
    )


def deliver(
    conn: sa.Connection,
    spec: SegmentSpec,
    run_id: int,
    provider: Provider,
    renderer: Renderer,
) -> None:
    """Send every `pending` row of this run; each row ends `sent`, `failed` or
    `sent_unconfirmed`, or stays `pending` + attempted if the process dies during its request."""
    assert spec.email is not None
    kind = spec.email.kind
    tracker = LedgerTracker(conn, provider.name)
    last = ""
    while rows := _next_rows(conn, run_id, last, provider.batch_size):
        conn.commit()  # the read above opened a transaction; claims commit on their own
        last = rows[-1].message_id
        broken: list[SendOutcome] = []
        emails: list[OutgoingEmail] = []
        for row in rows:
            if not valid_email(row.email):  # belt and braces: SQL already rejected these
                broken.append(SendOutcome(row.message_id, "failed", INVALID))
                continue
            try:
                rendered = renderer.render(
                    row.template, dict(row.payload), row.message_id, spec.name, kind, step=row.step
                )
            except Exception as exc:  # a broken template fails its own row, not the run
                broken.append(
                    SendOutcome(row.message_id, "failed", f"template error: {one_line(exc)}")
                )
                continue
            emails.append(
                OutgoingEmail(
                    message_id=row.message_id,
                    to=row.email,
                    subject=rendered.subject,
                    html=rendered.html,
                    text=rendered.text,
                    segment=spec.name,
                    template=row.template,
                    step=row.step,
                    headers=unsubscribe_headers(renderer, row.message_id, kind),
                    unsubscribe_scope=kind if kind == "marketing" else None,
                )
            )
        if broken:  # counted as an attempt, so adopt_unfinished stops retrying them in time
            tracker.claim([o.message_id for o in broken])
            tracker.record(broken)
        if emails:
            tracker.record(_send(provider, emails, tracker))
    conn.commit()  # close the transaction the last (empty) read opened


def _takes_tracker(provider: Provider) -> bool:
    """Whether this provider's send() claims and records per request (takes `tracker=`); a
    subclass that overrides send() without it is claimed per batch, the safe default."""
    params = inspect.signature(provider.send).parameters.values()
    return any(p.name == "tracker" for p in params)


def _send(
    provider: Provider, emails: list[OutgoingEmail], tracker: LedgerTracker
) -> list[SendOutcome]:
    """Providers that take a tracker claim and record per request; others per batch."""
    per_request = _takes_tracker(provider)
    if not per_request:
        tracker.claim([e.message_id for e in emails])
    try:
        if per_request:
            return provider.send(emails, tracker=tracker)  # type: ignore[call-arg]
        return provider.send(emails)
    except AmbiguousSendError as exc:  # it may have been accepted: never resend
        return [SendOutcome(e.message_id, "sent_unconfirmed", one_line(exc)) for e in emails]
    except ProviderError as exc:
        return [SendOutcome(e.message_id, "failed", one_line(exc)) for e in emails]


# Payload fields that say who a member is; the summary's sample shows a hashed stand-in instead.
IDENTITY_FIELDS = ("email", "name", "first_name", "last_name", "developer_id", "member_key")
COMPANY_FIELDS = ("company_name", "company")


def hashed_identity(payload: dict[str, Any], member_key: str) -> dict[str, Any]:
    """The member's payload with who they are replaced by a hash of their member key: the sample
    in a run's summary (Dagster metadata, visible to every UI user) shows the email's shape and
    numbers, not a customer's name, address or company."""
    tag = hash_key(member_key)
    out = dict(payload)
    stand_in = {
        "email": f"member-{tag}@example.invalid",
        "name": f"Member {tag}",
        "first_name": f"Member-{tag}",
        "last_name": tag,
        "developer_id": tag,
        "member_key": tag,
    }
    for key in IDENTITY_FIELDS:
        if key in out:
            out[key] = stand_in[key]
    for key in COMPANY_FIELDS:
        if out.get(key):
            out[key] = f"Company {tag[:6]}"
    return out


def render_sample(
    conn: sa.Connection, spec: SegmentSpec, run_id: int, renderer: Renderer, r: SyncResult
) -> None:
    """Render one email of this run for the summary (Dagster metadata), identity hashed."""
    assert spec.email is not None
    row: Any = conn.execute(
        sa.text(
            "select message_id, member_key, payload, template, step from email_sync.messages "
            "where run_id = :run and status = 'pending' order by member_key limit 1"
        ),
        {"run": run_id},
    ).first()
    if row is None:
        return
    try:
        # The sample row's own step and template: a later step of a campaign is another email.
        rendered = renderer.render(
            row.template,
            hashed_identity(dict(row.payload), row.member_key),
            row.message_id,
            spec.name,
            spec.email.kind,
            step=row.step,
        )
    except Exception as exc:  # a broken template shows in the summary; the send records it
        r.sample_markdown = f"template {row.template} failed to render: {one_line(exc)}"
        return
    r.sample_html = rendered.html
    r.sample_markdown = (
        f"**Subject:** {rendered.subject}\n\n"
        f"**To:** member `{hash_key(row.member_key)}` (template `{row.template}`)\n\n"
        f"```text\n{rendered.text}```\n"
    )
