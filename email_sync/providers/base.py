"""The small interface every delivery channel implements, and the retry rules they share.

A provider only moves bytes: which rows to send, and what their outcome means, is decided by
`email_sync.sync` against the ledger. Providers time their own I/O (`wait_seconds`) so the bench
can tell onramp's own time from time spent waiting on the server.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from onramp.errors import OnrampError

log = logging.getLogger(__name__)


class ProviderError(OnrampError):
    """A provider call failed for good (after the retries it deserved)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status, when there was one (400 triggers bisection)


class AmbiguousSendError(ProviderError):
    """The request reached the server but no answer came back: it may have been accepted."""


class ListsUnsupported(ProviderError):
    """This channel has no contact lists (SMTP)."""


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email to one recipient; `message_id` is the ledger row's id."""

    message_id: str
    to: str
    subject: str
    html: str
    text: str
    segment: str
    template: str
    headers: dict[str, str] = field(default_factory=dict)
    # The unsubscribe scope (category) of marketing mail; None for transactional mail.
    unsubscribe_scope: str | None = None
    step: str = "1"  # the campaign step (1-based), as the ledger's `step` holds it

    @property
    def custom_args(self) -> dict[str, str]:
        # Event Webhook events carry these as top-level keys, which maps them back to the ledger
        # (the message) and to the campaign and step (engagement per step).
        return {
            "onramp_message_id": self.message_id,
            "onramp_segment": self.segment,
            "onramp_campaign": self.segment,
            "onramp_step": self.step,
        }

    @property
    def categories(self) -> tuple[str, ...]:
        """SendGrid categories: the campaign and its step, for per-step statistics."""
        return ("onramp", self.segment, self.template, f"{self.segment}:step-{self.step}")


@dataclass(frozen=True)
class SendOutcome:
    """What the provider said about one message: sent, failed or sent_unconfirmed."""

    message_id: str
    status: str  # sent | failed | sent_unconfirmed
    reason: str | None = None
    provider_message_id: str | None = None


@dataclass(frozen=True)
class Contact:
    """A list member to upsert; `fields` maps segment column name -> value."""

    email: str
    first_name: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportJob:
    """A provider contact import job: its addresses and, once polled, its status
    (pending | completed | errored | failed) and the per-address failures."""

    job_id: str
    emails: list[str]
    status: str = "pending"
    failed: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


@dataclass
class ListOutcome:
    """Which addresses the provider confirmed; everything else stays pending for the next run.
    `jobs` are the upsert import jobs; those still `pending` are confirmed by a later run."""

    upserted: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    jobs: list[ImportJob] = field(default_factory=list)


@dataclass
class RetryPolicy:
    """Bounded patience: exponential backoff for 5xx/timeouts, honour X-RateLimit-Reset on 429."""

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    max_rate_limit_wait_s: float = 120.0  # total per call
    max_rate_limit_hits: int = 30
    sleep: Callable[[float], None] = time.sleep

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return delay * (0.75 + random.random() / 2)


class Provider:
    """Base class: `send` is required; lists, suppressions and reconciliation are optional."""

    name = "base"
    # How many emails `send` takes at once (SendGrid: 1,000 personalizations per request).
    batch_size = 1000

    def __init__(self) -> None:
        self.wait_seconds = 0.0  # time inside provider I/O, including backoff sleeps
        self.calls = 0

    def send(self, emails: list[OutgoingEmail]) -> list[SendOutcome]:
        raise NotImplementedError

    def sync_list(
        self,
        list_name: str,
        field_types: dict[str, str],
        upserts: list[Contact],
        removals: list[str],
    ) -> ListOutcome:
        raise ListsUnsupported(f"the {self.name} provider has no contact lists")

    def check_import(self, job: ImportJob) -> ImportJob:
        """Poll a contact import job an earlier run left pending; returns it with its status."""
        raise ListsUnsupported(f"the {self.name} provider has no contact import jobs")

    def fetch_suppressions(self) -> Iterable[tuple[str, str]]:
        """(email, reason) pairs the provider will not deliver to."""
        return []

    def was_delivered(self, message_id: str) -> bool | None:
        """After a crash: True/False when the provider can tell, None when it cannot."""
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
