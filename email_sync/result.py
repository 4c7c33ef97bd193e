"""SyncResult: what one sync of one segment did (CLI table, Dagster metadata, bench)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass
class SyncResult:
    """What one sync of one segment did (or, with dry_run, would do)."""

    segment: str
    as_of: date
    provider: str
    dry_run: bool = False
    status: str = "ok"  # ok | refused
    run_id: int | None = None
    first_sync: bool = False
    members: int = 0
    entered: int = 0
    exited: int = 0
    sent: int = 0
    suppressed: int = 0
    failed: int = 0
    capped: int = 0  # held back by the frequency cap this run (deferred to a later day)
    held_out: int = 0  # holdout members whose step was recorded, not sent
    skipped: int = 0
    unconfirmed: int = 0
    retried: int = 0
    gave_up: int = 0
    list_added: int = 0
    list_removed: int = 0
    list_skipped: int = 0
    list_pending: int = 0
    notes: list[str] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)  # message text, for dry runs and the CLI
    notified: int = 0
    notify_failed: int = 0
    sample_markdown: str = ""
    sample_html: str = ""
    sample_member_hashes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    provider_seconds: float = 0.0
    diff_seconds: float = 0.0
    due_seconds: float = 0.0  # deciding which campaign steps are due (who, which step, holdout)
    record_seconds: float = 0.0  # writing those decisions to the ledger and the membership
    guardrail_seconds: float = 0.0  # address, suppression, consent and cap checks on them

    def as_row(self) -> dict[str, Any]:
        """The columns of `onramp sync`'s table, in order."""
        return {
            "segment": self.segment,
            "members": self.members,
            "entered": self.entered,
            "exited": self.exited,
            "sent": self.sent,
            "suppressed": self.suppressed,
            "failed": self.failed,
            "capped": self.capped,
        }
