"""The message ledger `email_sync.messages`: one row per (segment, step, member, period), ever.

`segment` is the campaign (segment) name, `step` the 1-based step number as text, `period` the
sequence run it belongs to (`entry-<n>`, or `once` when the campaign never re-runs).

A row is written `pending` in the decision transaction, stamped `attempted_at` (committed) before
the provider call and given its outcome after it. The unique key makes a retried, resumed or
concurrent run unable to create a second row; `reconcile` settles rows a crashed run left
between the provider's accept and the commit.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from email_sync.guardrails import INVALID
from email_sync.providers import Provider, SendOutcome
from email_sync.result import SyncResult
from email_sync.specs import SegmentSpec

log = logging.getLogger(__name__)


def adopt_unfinished(conn: sa.Connection, spec: SegmentSpec, run_id: int, max_attempts: int) -> int:
    """Bring this segment's unsettled rows into this run: failed rows get another try (up to
    max_attempts), rows the frequency cap deferred get today's chance, and rows a crashed run
    decided but never handed to a provider are adopted. `sequences.skip_ended` then skips those
    whose sequence has ended, so a step is never sent after the member left."""
    return conn.execute(
        sa.text(
            f"""
            update email_sync.messages set status = 'pending', run_id = :run,
                attempted_at = null, updated_at = now()
            where segment = :seg and run_id is distinct from :run
              and status in ('pending', 'capped', 'failed') and (
                (status = 'failed' and reason is distinct from '{INVALID}'
                 and attempts < :max_attempts)
                or (status = 'pending' and attempted_at is null)
                or status = 'capped'
            )
            """
        ),
        {"seg": spec.name, "run": run_id, "max_attempts": max_attempts},
    ).rowcount


def count_pending(conn: sa.Connection, run_id: int) -> int:
    """Messages of a sync run still waiting to be sent."""
    return conn.execute(
        sa.text(
            "select count(*) from email_sync.messages where run_id = :run and status = 'pending'"
        ),
        {"run": run_id},
    ).scalar_one()


def reconcile(conn: sa.Connection, spec: SegmentSpec, provider: Provider, r: SyncResult) -> None:
    """Settle rows a crashed run left `pending` after handing them to a provider.

    The choice, per provider: the outbox can be asked exactly (is the .eml there?) so a missing
    file is resent and a present one is `sent`. SendGrid and SMTP cannot be asked whether a given
    message was accepted (SendGrid's mail send has no idempotency key and no lookup by custom_arg
    in its contract), so such rows become `sent_unconfirmed` and are never resent: a missing
    email is better than a duplicate. Each SendGrid personalization carries the custom_arg
    `onramp_message_id`, so the Event Webhook can later confirm them.
    """
    with conn.begin():
        rows = conn.execute(
            sa.text(
                "select message_id, provider from email_sync.messages "
                "where segment = :seg and status = 'pending' and attempted_at is not null "
                "for update"
            ),
            {"seg": spec.name},
        ).all()
        if not rows:
            return
        sent, resend, unknown = [], [], []
        for message_id, row_provider in rows:
            answer = provider.was_delivered(message_id) if row_provider == provider.name else None
            (sent if answer else resend if answer is False else unknown).append(message_id)
        conn.execute(
            sa.text(
                "update email_sync.messages set status = 'sent', sent_at = now(), "
                "updated_at = now(), reason = 'confirmed after an interrupted run' "
                "where message_id = any(:ids)"
            ),
            {"ids": sent},
        )
        conn.execute(
            sa.text(
                "update email_sync.messages set attempted_at = null, updated_at = now() "
                "where message_id = any(:ids)"
            ),
            {"ids": resend},
        )
        conn.execute(
            sa.text(
                "update email_sync.messages set status = 'sent_unconfirmed', updated_at = now(), "
                "sent_at = attempted_at, reason = :reason where message_id = any(:ids)"
            ),
            {
                "ids": unknown,
                "reason": "handed to the provider before an interrupted run; not resent",
            },
        )
    if unknown:
        r.notes.append(f"{len(unknown)} interrupted message(s) marked sent_unconfirmed")
    log.info(
        "reconciled %s: %d sent, %d to resend, %d unconfirmed",
        spec.name,
        len(sent),
        len(resend),
        len(unknown),
    )


def record_outcomes(conn: sa.Connection, outcomes: list[SendOutcome]) -> None:
    """Write what the provider said; only rows still `pending` change."""
    if not outcomes:
        return
    with conn.begin():
        conn.execute(
            sa.text(
                """
                update email_sync.messages as g set
                    status = o.status, reason = o.reason, provider_message_id = o.pmid,
                    sent_at = case when o.status in ('sent', 'sent_unconfirmed') then now() end,
                    updated_at = now()
                from unnest(cast(:ids as text[]), cast(:statuses as text[]),
                            cast(:reasons as text[]), cast(:pmids as text[]))
                    as o(id, status, reason, pmid)
                where g.message_id = o.id and g.status = 'pending'
                """
            ),
            {
                "ids": [o.message_id for o in outcomes],
                "statuses": [o.status for o in outcomes],
                "reasons": [(o.reason or None) and o.reason[:1000] for o in outcomes],
                "pmids": [o.provider_message_id for o in outcomes],
            },
        )


def count_run(
    conn: sa.Connection, spec: SegmentSpec, run_id: int, max_attempts: int, r: SyncResult
) -> None:
    """Fill the result's email counts from this run's ledger rows (inside the caller's tx)."""
    counts = dict(
        conn.execute(
            sa.text(
                "select status, count(*) from email_sync.messages where run_id = :run "
                "group by status"
            ),
            {"run": run_id},
        ).all()
    )
    # In a dry run nothing is sent: `sent` is what would be sent.
    r.sent = counts.get("sent", 0) + (counts.get("pending", 0) if r.dry_run else 0)
    r.suppressed = counts.get("suppressed", 0)
    r.failed = counts.get("failed", 0)
    r.capped = counts.get("capped", 0)
    r.held_out = counts.get("held_out", 0)
    r.skipped += counts.get("skipped", 0)
    r.unconfirmed = counts.get("sent_unconfirmed", 0)
    if spec.email:
        r.gave_up = conn.execute(
            sa.text(
                "select count(*) from email_sync.messages where segment = :seg "
                f"and status = 'failed' and (reason = '{INVALID}' or attempts >= :max)"
            ),
            {"seg": spec.name, "max": max_attempts},
        ).scalar_one()
