"""The SendGrid suppression pull (and push): once per sync of all segments, outside any decision
transaction, and incremental.

SendGrid's global lists (/v3/suppression/{unsubscribes,bounces,blocks,spam_reports,
invalid_emails}) take `start_time`: we ask only for entries created since the newest one we saw
(`email_sync.suppression_pulls`, one row per list; an entry at the boundary second is asked for
again and upserted as a no-op). Group suppressions (/v3/asm/groups/{id}/suppressions) carry no
timestamps, so each group's list is read whole; it is one call per group. What SendGrid removes
again (a resubscribe) reaches us through the Event Webhook, which lifts the suppression.

Scopes: an onramp group ('onramp marketing') suppresses its own scope, any other group
'marketing'; the global lists make SendGrid drop everything, so they are 'all'.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from email_sync.feedback.asm import scope_of_group
from email_sync.feedback.events import ALL, MARKETING, add_suppressions
from email_sync.feedback.schema import ensure_feedback_schema

log = logging.getLogger(__name__)

SOURCE = "sendgrid"
GLOBAL_KINDS = ("unsubscribes", "bounces", "blocks", "spam_reports", "invalid_emails")
PAGE = 500

# Set by `one_pull_per_sync` while sync_all runs, so each segment's decision skips the pull.
_pulled: contextvars.ContextVar[bool] = contextvars.ContextVar("onramp_suppressions_pulled")


def pulled_this_sync() -> bool:
    """Whether suppressions were already pulled in this sync (so no second pull)."""
    return _pulled.get(False)


@contextlib.contextmanager
def one_pull_per_sync(engine: sa.Engine, provider: Any | None) -> Iterator[int]:
    """Pull once (when the provider has suppressions to pull) and mark the sync as pulled."""
    pulled = pull_suppressions(engine, provider) if provider is not None else 0
    token = _pulled.set(True)
    try:
        yield pulled
    finally:
        _pulled.reset(token)


def pull_suppressions(engine: sa.Engine, provider: Any) -> int:
    """Upsert what SendGrid suppressed since the last pull; returns addresses seen. Providers
    without suppression lists (outbox, SMTP) are a no-op."""
    if getattr(provider, "name", None) != "sendgrid":
        return 0
    with engine.begin() as conn:
        ensure_feedback_schema(conn)
        since = dict(
            conn.execute(
                sa.text(
                    "select kind, pulled_until from email_sync.suppression_pulls "
                    "where provider = :p"
                ),
                {"p": SOURCE},
            ).all()
        )
    rows: list[tuple[str, str, str, str]] = []
    marks: dict[str, int] = {}
    sg = provider.sg.client
    for kind in GLOBAL_KINDS:
        start = since.get(kind)
        newest = start or 0
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": PAGE, "offset": offset}
            if start:
                params["start_time"] = start
            page = provider._json(
                provider._call(
                    f"suppression/{kind}",
                    lambda k=kind, p=params: sg.suppression._(k).get(
                        query_params=p, timeout=provider.timeout_s
                    ),
                )
            )
            for item in page or []:
                created = int(item.get("created") or 0)
                newest = max(newest, created)
                at = datetime.fromtimestamp(created or 0, UTC).isoformat()
                reason = kind.rstrip("s") + (f": {item['reason']}" if item.get("reason") else "")
                if item.get("email"):
                    rows.append((item["email"].strip().lower(), reason[:500], ALL, at))
            if len(page or []) < PAGE:
                break
            offset += PAGE
        marks[kind] = newest
    groups = provider._json(
        provider._call("asm/groups", lambda: sg.asm.groups.get(timeout=provider.timeout_s))
    )
    now = datetime.now(UTC).isoformat()
    for group in groups or []:
        gid = group.get("id")
        scope = scope_of_group(group.get("name")) or MARKETING
        emails = provider._json(
            provider._call(
                "asm/groups/suppressions",
                lambda g=gid: sg.asm.groups._(g).suppressions.get(timeout=provider.timeout_s),
            )
        )
        for address in emails or []:
            if address:
                reason = f"group_unsubscribe: {group.get('name', gid)}"
                rows.append((address.strip().lower(), reason[:500], scope, now))
    with engine.begin() as conn:
        if rows:
            add_suppressions(conn, rows, SOURCE)
        conn.execute(
            sa.text(
                """
                insert into email_sync.suppression_pulls (provider, kind, pulled_until)
                select :p, k, u from unnest(cast(:k as text[]), cast(:u as bigint[])) as x(k, u)
                on conflict (provider, kind) do update set pulled_until = excluded.pulled_until,
                    pulled_at = now()
                """
            ),
            {"p": SOURCE, "k": list(marks), "u": list(marks.values())},
        )
    log.info("suppression pull: %d address(es) from SendGrid", len({r[0] for r in rows}))
    push_one_click(engine, provider)
    return len({r[0] for r in rows})


def push_one_click(engine: sa.Engine, provider: Any) -> int:
    """The other way: one-click unsubscribes recorded by the receiver since the last push become
    suppressions of the scope's unsubscribe group at SendGrid, so SendGrid's preference centre,
    its own list sends and other tools reading SendGrid agree with us."""
    from email_sync.feedback.asm import asm_group_id
    from email_sync.feedback.unsubscribe import ONE_CLICK_SOURCE

    mark = f"push:{ONE_CLICK_SOURCE}"
    with engine.connect() as conn:
        since = conn.execute(
            sa.text(
                "select pulled_until from email_sync.suppression_pulls "
                "where provider = :p and kind = :k"
            ),
            {"p": SOURCE, "k": mark},
        ).scalar_one_or_none()
        rows = conn.execute(
            sa.text(
                # microseconds, so the mark is exact and `>` neither repeats nor skips a row
                "select email, scope, (extract(epoch from created_at) * 1000000)::bigint as at "
                "from email_sync.suppressions where source = :src and scope <> 'all' "
                "and (extract(epoch from created_at) * 1000000)::bigint > :since "
                "order by created_at"
            ),
            {"src": ONE_CLICK_SOURCE, "since": since or 0},
        ).all()
    if not rows:
        return 0
    sg = provider.sg.client
    by_scope: dict[str, list[str]] = {}
    for row in rows:
        by_scope.setdefault(row.scope, []).append(row.email)
    for scope, emails in by_scope.items():
        gid = asm_group_id(provider, scope)
        for i in range(0, len(emails), PAGE):
            body = {"recipient_emails": emails[i : i + PAGE]}
            provider._call(
                "asm group suppressions",
                lambda g=gid, b=body: sg.asm.groups._(g).suppressions.post(
                    request_body=b, timeout=provider.timeout_s
                ),
            )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into email_sync.suppression_pulls (provider, kind, pulled_until) "
                "values (:p, :k, :u) on conflict (provider, kind) do update "
                "set pulled_until = excluded.pulled_until, pulled_at = now()"
            ),
            {"p": SOURCE, "k": mark, "u": max(r.at for r in rows)},
        )
    log.info("pushed %d one-click unsubscribe(s) to SendGrid groups", len(rows))
    return len(rows)
