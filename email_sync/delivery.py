"""Delivery of this run's `pending` ledger rows in provider-sized batches, and the sample email
rendered for the run's summary.

Per batch: claim (stamp `attempted_at`, committed), render, hand to the provider, record the
outcomes. Rendering happens here rather than in the provider so every channel sends the same bytes
and a broken template fails only its own row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from email_sync.errors import one_line
from email_sync.guardrails import INVALID
from email_sync.hashing import hash_key
from email_sync.ledger import claim_batch, record_outcomes
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


def deliver(
    conn: sa.Connection,
    spec: SegmentSpec,
    run_id: int,
    provider: Provider,
    renderer: Renderer,
) -> None:
    """Send every `pending` row of this run; each row ends `sent`, `failed` or
    `sent_unconfirmed`, or stays `pending` + attempted if the process dies mid-batch."""
    assert spec.email is not None
    kind = spec.email.kind
    last = ""
    while rows := claim_batch(conn, run_id, last, provider.batch_size, provider.name):
        last = rows[-1].message_id
        outcomes: list[SendOutcome] = []
        emails: list[OutgoingEmail] = []
        for row in rows:
            if not valid_email(row.email):  # belt and braces: SQL already rejected these
                outcomes.append(SendOutcome(row.message_id, "failed", INVALID))
                continue
            try:
                rendered = renderer.render(
                    row.template, dict(row.payload), row.message_id, spec.name, kind, step=row.step
                )
            except Exception as exc:  # a broken template fails its own row, not the run
                outcomes.append(
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
                    headers={"List-Unsubscribe": f"<{renderer.unsubscribe_url(row.message_id)}>"},
                )
            )
        if emails:
            outcomes.extend(_send(provider, emails))
        record_outcomes(conn, outcomes)


def _send(provider: Provider, emails: list[OutgoingEmail]) -> list[SendOutcome]:
    try:
        return provider.send(emails)
    except AmbiguousSendError as exc:  # it may have been accepted: never resend
        return [SendOutcome(e.message_id, "sent_unconfirmed", one_line(exc)) for e in emails]
    except ProviderError as exc:
        return [SendOutcome(e.message_id, "failed", one_line(exc)) for e in emails]


def render_sample(
    conn: sa.Connection, spec: SegmentSpec, run_id: int, renderer: Renderer, r: SyncResult
) -> None:
    """Render one email of this run for the summary (Dagster metadata), address hashed."""
    assert spec.email is not None
    row: Any = conn.execute(
        sa.text(
            "select message_id, member_key, payload from email_sync.messages "
            "where run_id = :run and status = 'pending' order by member_key limit 1"
        ),
        {"run": run_id},
    ).first()
    if row is None:
        return
    try:
        rendered = renderer.render(
            spec.email.template, dict(row.payload), row.message_id, spec.name, spec.email.kind
        )
    except Exception as exc:  # a broken template shows in the summary; the send records it
        r.sample_markdown = f"template {spec.email.template} failed to render: {one_line(exc)}"
        return
    r.sample_html = rendered.html
    r.sample_markdown = (
        f"**Subject:** {rendered.subject}\n\n"
        f"**To:** member `{hash_key(row.member_key)}` (template `{spec.email.template}`)\n\n"
        f"```text\n{rendered.text}```\n"
    )
