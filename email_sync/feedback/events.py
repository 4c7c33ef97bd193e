"""Storing a batch of Event Webhook events and what they mean for email_sync.

One transaction per batch (the receiver answers 2xx only after it commits, so SendGrid retries
anything not stored):

1. Read every event; one that cannot be read is quarantined in `raw.email_event_rejects` with its
   reason and the rest of the batch goes on.
2. Insert into `raw.email_events` on `sg_event_id` with ON CONFLICT DO NOTHING: a redelivered
   batch adds nothing, and only the events new to us have effects below.
3. Effects of the new events, set-based: processed/delivered confirm `sent_unconfirmed` ledger rows;
   bounce/dropped mark theirs; unsubscribe, group_unsubscribe, bounce, spamreport and dropped
   become suppressions with a scope; group_resubscribe/resubscribe lift the self-service ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

WEBHOOK_SOURCE = "sendgrid-webhook"
MARKETING = "marketing"
ALL = "all"
# event -> suppression scope. Unsubscribes are the recipient's own choice about marketing mail;
# bounces, spam reports and drops mean nothing should go to that address at all.
SUPPRESSING = {
    "unsubscribe": MARKETING,
    "group_unsubscribe": MARKETING,
    "bounce": ALL,
    "spamreport": ALL,
    "dropped": ALL,
}
RESUBSCRIBING = {"group_resubscribe", "resubscribe"}
CONFIRMING = {"processed", "delivered"}
FAILING = {"bounce": "bounced", "dropped": "dropped"}
MAX_ID = 255


@dataclass
class BatchResult:
    """What one batch did: events received, new rows stored, duplicates, quarantined."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    confirmed: int = 0
    suppressed: int = 0
    resubscribed: int = 0
    reasons: list[str] = field(default_factory=list)


class Rejected(ValueError):
    """An event that cannot be stored as an event; its message is the quarantine reason."""


def _text(event: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = event.get(key)
    if value is None or value == "":
        if required:
            raise Rejected(f"missing {key}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Rejected(f"{key} is not a string")
    return str(value)


def read_event(event: Any) -> dict[str, Any]:
    """The columns of raw.email_events for one event, or Rejected with the reason."""
    if not isinstance(event, dict):
        raise Rejected("event is not a JSON object")
    sg_event_id = _text(event, "sg_event_id", required=True)
    assert sg_event_id is not None
    if len(sg_event_id) > MAX_ID:
        raise Rejected("sg_event_id too long")
    name = _text(event, "event", required=True)
    email = _text(event, "email", required=True)
    ts = event.get("timestamp")
    if isinstance(ts, bool) or ts is None:
        raise Rejected("missing timestamp")
    try:
        occurred = datetime.fromtimestamp(int(float(ts)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise Rejected("timestamp is not unix seconds") from None
    category = event.get("category")
    if category is not None and not isinstance(category, str | list):
        raise Rejected("category is neither a string nor a list")
    group = event.get("asm_group_id")
    try:
        group_id = int(group) if group not in (None, "") and not isinstance(group, bool) else None
    except (TypeError, ValueError):
        raise Rejected("asm_group_id is not an integer") from None
    return {
        "sg_event_id": sg_event_id,
        "event": str(name).lower(),
        "email": str(email).strip(),
        "occurred_at": occurred.isoformat(),
        "sg_message_id": _text(event, "sg_message_id"),
        "onramp_message_id": _text(event, "onramp_message_id"),
        "onramp_campaign": _text(event, "onramp_campaign") or _text(event, "onramp_segment"),
        "onramp_step": _text(event, "onramp_step"),
        "category": [category] if isinstance(category, str) else category,
        "reason": _text(event, "reason"),
        "status": _text(event, "status"),
        "bounce_type": _text(event, "type"),
        "url": _text(event, "url"),
        "asm_group_id": group_id,
        "payload": event,
    }


def parse_batch(body: bytes) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(rows, rejects) from a raw request body; a body that is not a JSON array is one reject."""
    try:
        batch = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [], [("body is not JSON", body.decode("utf-8", "replace"))]
    if not isinstance(batch, list):
        return [], [("body is not a JSON array", body.decode("utf-8", "replace"))]
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[str, str]] = []
    for event in batch:
        try:
            rows.append(read_event(event))
        except Rejected as exc:
            rejects.append((str(exc), orjson.dumps(event).decode()))
    return rows, rejects


_INSERT = sa.text(
    """
    insert into raw.email_events (
        sg_event_id, event, email, occurred_at, sg_message_id, onramp_message_id,
        onramp_campaign, onramp_step, category, reason, status, bounce_type, url, asm_group_id,
        payload
    )
    select sg_event_id, event, email, occurred_at, sg_message_id, onramp_message_id,
        onramp_campaign, onramp_step, category, reason, status, bounce_type, url, asm_group_id,
        payload
    from jsonb_to_recordset(cast(:rows as jsonb)) as r(
        sg_event_id text, event text, email text, occurred_at timestamptz, sg_message_id text,
        onramp_message_id text, onramp_campaign text, onramp_step text, category jsonb,
        reason text, status text, bounce_type text, url text, asm_group_id bigint, payload jsonb
    )
    -- one lock order for every batch, so concurrent (re)deliveries never deadlock
    order by sg_event_id
    on conflict (sg_event_id) do nothing
    returning sg_event_id
    """
)


def insert_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows idempotently; returns the sg_event_ids that were new."""
    if not rows:
        return set()
    return set(conn.execute(_INSERT, {"rows": orjson.dumps(rows).decode()}).scalars())


def quarantine(conn: sa.Connection, rejects: list[tuple[str, str]]) -> int:
    """Keep events that failed to parse in raw.email_event_rejects (once each); returns how many."""
    if not rejects:
        return 0
    hashes = [hashlib.sha256(text.encode()).hexdigest() for _, text in rejects]
    conn.execute(
        sa.text(
            """
            insert into raw.email_event_rejects (event_hash, reason, event_text)
            select h, r, t from unnest(
                cast(:h as text[]), cast(:r as text[]), cast(:t as text[])) as x(h, r, t)
            on conflict (event_hash) do nothing
            """
        ),
        {"h": hashes, "r": [r for r, _ in rejects], "t": [t for _, t in rejects]},
    )
    return len(rejects)


def store_batch(conn: sa.Connection, body: bytes) -> BatchResult:
    """Parse, store and apply one webhook body inside the caller's transaction."""
    rows, rejects = parse_batch(body)
    result = BatchResult(received=len(rows) + len(rejects))
    result.quarantined = quarantine(conn, rejects)
    result.reasons = sorted({r for r, _ in rejects})
    new_ids = insert_events(conn, rows)
    result.stored = len(new_ids)
    result.duplicates = len(rows) - len(new_ids)
    new_rows = [r for r in rows if r["sg_event_id"] in new_ids]
    if new_rows:
        apply_effects(conn, new_rows, result)
    return result


def apply_effects(conn: sa.Connection, rows: list[dict[str, Any]], result: BatchResult) -> None:
    """Ledger confirmation and suppressions from events stored for the first time."""
    confirm = sorted({r["onramp_message_id"] for r in rows if r["event"] in CONFIRMING} - {None})
    if confirm:
        result.confirmed = conn.execute(
            sa.text(
                "update email_sync.messages set status = 'sent', reason = null, "
                "updated_at = now() where message_id = any(:ids) and status = 'sent_unconfirmed'"
            ),
            {"ids": confirm},
        ).rowcount
    failing = [r for r in rows if r["event"] in FAILING and r["onramp_message_id"]]
    if failing:
        conn.execute(
            sa.text(
                """
                update email_sync.messages as g set status = f.status, reason = f.reason,
                    updated_at = now()
                from unnest(cast(:ids as text[]), cast(:statuses as text[]),
                            cast(:reasons as text[])) as f(id, status, reason)
                where g.message_id = f.id and g.status in ('sent', 'sent_unconfirmed')
                """
            ),
            {
                "ids": [r["onramp_message_id"] for r in failing],
                "statuses": [FAILING[r["event"]] for r in failing],
                "reasons": [
                    f"{r['event']}: {r['reason'] or r['status'] or 'no reason given'}"[:500]
                    for r in failing
                ],
            },
        )
    suppress_rows: list[tuple[str, str, str, str]] = []  # email, reason, scope, at
    lift: list[tuple[str, str]] = []  # email, at
    for r in sorted(rows, key=lambda r: r["occurred_at"]):
        email = r["email"].lower()
        if r["event"] in SUPPRESSING:
            reason = r["event"] if not r["reason"] else f"{r['event']}: {r['reason']}"
            suppress_rows.append((email, reason[:500], SUPPRESSING[r["event"]], r["occurred_at"]))
        elif r["event"] in RESUBSCRIBING:
            lift.append((email, r["occurred_at"]))
    if suppress_rows:
        result.suppressed = add_suppressions(conn, suppress_rows, WEBHOOK_SOURCE)
    if lift:
        result.resubscribed = lift_suppressions(conn, lift)


def add_suppressions(
    conn: sa.Connection, rows: list[tuple[str, str, str, str]], source: str
) -> int:
    """Upsert (email, reason, scope, at) suppressions. A scope only widens (marketing -> all),
    so an unsubscribe never softens an earlier bounce."""
    latest: dict[str, tuple[str, str, str, str]] = {}
    for row in rows:  # one row per address per statement (ON CONFLICT may not hit a row twice)
        prev = latest.get(row[0])
        latest[row[0]] = row if prev is None or row[2] == ALL or prev[2] != ALL else prev
    values = [latest[e] for e in sorted(latest)]  # one lock order across concurrent batches
    return conn.execute(
        sa.text(
            """
            insert into email_sync.suppressions as s (email, reason, source, scope, created_at)
            select e, r, :source, sc, at from unnest(cast(:e as text[]), cast(:r as text[]),
                cast(:sc as text[]), cast(:at as timestamptz[])) as x(e, r, sc, at)
            on conflict (email) do update set scope = excluded.scope, reason = excluded.reason,
                source = excluded.source, created_at = excluded.created_at
            where s.scope <> 'all' and excluded.scope = 'all'
               or s.scope = excluded.scope and s.created_at < excluded.created_at
                  and s.scope <> 'all'
            """
        ),
        {
            "source": source,
            "e": [v[0] for v in values],
            "r": [v[1] for v in values],
            "sc": [v[2] for v in values],
            "at": [v[3] for v in values],
        },
    ).rowcount


def lift_suppressions(conn: sa.Connection, rows: list[tuple[str, str]]) -> int:
    """A re-subscription removes the recipient's own opt-out made before it, never a bounce or
    a spam report (scope 'all')."""
    latest: dict[str, str] = {}
    for email, at in rows:
        latest[email] = max(at, latest.get(email, at))
    return conn.execute(
        sa.text(
            """
            delete from email_sync.suppressions as s
            using unnest(cast(:e as text[]), cast(:at as timestamptz[])) as x(e, at)
            where s.email = x.e and s.scope <> 'all' and s.created_at <= x.at
            """
        ),
        {"e": sorted(latest), "at": [latest[e] for e in sorted(latest)]},
    ).rowcount
