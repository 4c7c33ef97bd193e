"""Post recorded notifications: Slack through the official `slack-sdk` webhook client, the generic
webhook as signed JSON. Exactly once per (segment, run, destination):

- a row is stamped `attempted_at` (committed) before its post; a row found still `pending` with
  that stamp was interrupted mid-post (a crash) and becomes `unconfirmed`, never posted again;
- 2xx -> `posted`; Slack's 429 is waited out (its `Retry-After`, bounded) and tried again;
  5xx, a timeout or a refused connection -> `failed`, retried by the next run up to
  `max_attempts`; any other 4xx (`invalid_payload`, `no_service`...) -> `rejected`, not retried.

The URL is read from its environment variable at post time and never reaches a log, an error
line, the ledger or Dagster metadata: error text has the URL cut out before it is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from email_sync.notify.message import as_slack, as_webhook_body

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 30.0  # a longer wait is left to the next run rather than holding the sync
RATE_LIMIT_TRIES = 3
SIGNATURE_HEADER = "X-Onramp-Signature"
TIMESTAMP_HEADER = "X-Onramp-Timestamp"

_sleep = time.sleep  # tests swap this to record waits instead of sleeping

# slack-sdk logs the webhook URL and body at DEBUG unless its logger is set above DEBUG.
_SLACK_LOG = logging.getLogger("email_sync.notify.slack_sdk")
_SLACK_LOG.setLevel(logging.WARNING)


@dataclass
class Answer:
    """What the destination said: an HTTP status (0 = no answer), body and Retry-After."""

    status: int
    body: str = ""
    retry_after: float | None = None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `<timestamp>.<body>`: what a receiver recomputes to trust us
    (the timestamp inside the signature makes a replayed old request detectable)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _retry_after(headers: Any) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def post_slack(url: str, payload: dict[str, Any], timeout_s: float) -> Answer:
    """One incoming-webhook call with Block Kit; slack-sdk returns non-2xx answers, not raises."""
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(url, timeout=max(1, int(timeout_s)), logger=_SLACK_LOG)
    message = as_slack(payload)
    try:
        resp = client.send(text=message["text"], blocks=message["blocks"])
    except (OSError, urllib.error.URLError) as exc:
        return Answer(0, type(exc).__name__)
    return Answer(resp.status_code, str(resp.body or ""), _retry_after(resp.headers))


def post_webhook(url: str, secret: str, payload: dict[str, Any], timeout_s: float) -> Answer:
    """POST the documented JSON body with the HMAC signature headers."""
    body = json.dumps(as_webhook_body(payload), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "onramp-notify",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310
            return Answer(resp.status, resp.read(2000).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        text = exc.read(2000).decode("utf-8", "replace")
        return Answer(exc.code, text, _retry_after(exc.headers))
    except (OSError, urllib.error.URLError) as exc:
        return Answer(0, type(exc).__name__)


@dataclass
class PostOutcome:
    """Counts for the sync result."""

    posted: int = 0
    failed: int = 0
    rejected: int = 0
    unconfirmed: int = 0


def _send(row: dict[str, Any], timeout_s: float, sleep: Callable[[float], None]) -> Answer:
    url = os.environ.get(row["url_env"]) or ""
    if not url:
        return Answer(0, f"{row['url_env']} is not set")
    secret = os.environ.get(row["secret_env"] or "") or ""
    if row["destination"] == "webhook" and not secret:
        return Answer(0, f"{row['secret_env']} is not set")
    answer = Answer(0)
    for _ in range(RATE_LIMIT_TRIES):
        if row["destination"] == "slack":
            answer = post_slack(url, row["payload"], timeout_s)
        else:
            answer = post_webhook(url, secret, row["payload"], timeout_s)
        if answer.status != 429:
            break
        wait = answer.retry_after if answer.retry_after is not None else 1.0
        if wait > MAX_RETRY_AFTER_S:
            break
        log.info("notify %s: rate limited, waiting %.0f s", row["segment"], wait)
        sleep(wait)
    answer.body = answer.body.replace(url, "<url>") if url else answer.body
    return answer


def post_due(
    conn: sa.Connection,
    segment: str,
    *,
    max_attempts: int,
    timeout_s: float,
    sleep: Callable[[float], None] | None = None,
) -> PostOutcome:
    """Post this segment's pending notifications and retry its failed ones (bounded)."""
    outcome = PostOutcome()
    with conn.begin():
        exists = conn.execute(
            sa.text("select to_regclass('email_sync.notifications') is not null")
        ).scalar_one()
        if not exists:
            return outcome
        outcome.unconfirmed = conn.execute(
            sa.text(
                "update email_sync.notifications set status = 'unconfirmed', "
                "reason = 'interrupted while posting; not posted again' "
                "where segment = :seg and status = 'pending' and attempted_at is not null"
            ),
            {"seg": segment},
        ).rowcount
        rows = [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "select segment, run_id, destination, url_env, secret_env, payload "
                    "from email_sync.notifications where segment = :seg and "
                    "(status = 'pending' or (status = 'failed' and attempts < :max)) "
                    "order by run_id, destination"
                ),
                {"seg": segment, "max": max_attempts},
            ).mappings()
        ]
    key = "segment = :segment and run_id = :run_id and destination = :destination"
    for row in rows:
        ids = {k: row[k] for k in ("segment", "run_id", "destination")}
        with conn.begin():
            conn.execute(
                sa.text(
                    "update email_sync.notifications set status = 'pending', "
                    f"attempted_at = now(), attempts = attempts + 1 where {key}"
                ),
                ids,
            )
        answer = _send(row, timeout_s, sleep or _sleep)
        if 200 <= answer.status < 300:
            status, reason = "posted", None
            outcome.posted += 1
        elif answer.status in (0, 429) or answer.status >= 500:
            status, reason = "failed", f"{answer.status or 'no answer'}: {answer.body[:200]}"
            outcome.failed += 1
        else:
            status, reason = "rejected", f"{answer.status}: {answer.body[:200]}"
            outcome.rejected += 1
        if status != "posted":
            log.warning("notify %s to %s %s (%s)", segment, row["destination"], status, reason)
        with conn.begin():
            conn.execute(
                sa.text(
                    "update email_sync.notifications set status = :status, reason = :reason, "
                    "posted_at = case when :status = 'posted' then now() end "
                    f"where {key}"
                ),
                {**ids, "status": status, "reason": reason},
            )
    return outcome
