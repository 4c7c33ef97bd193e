"""PushResult: what one push of one pump did (command output, Dagster metadata, bench)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class PushResult:
    """What one push of one pump did (or, with dry_run, would do)."""

    pump: str
    object_type: str
    as_of: date
    dry_run: bool = False
    status: str = "ok"  # ok | held_back (stale events: computed, nothing sent)
    run_id: int | None = None
    first_push: bool = False
    rows: int = 0
    changed: int = 0
    pushed: int = 0
    rejected: int = 0
    unconfirmed: int = 0
    held_rejected: int = 0  # rejected before with the same values: not sent again
    associations: int = 0  # pushed (or, in a dry run, pending)
    association_failures: int = 0
    properties_created: list[str] = field(default_factory=list)
    requests: int = 0
    rate_limited: int = 0
    rejections: list[str] = field(default_factory=list)  # "<hash>: HubSpot's message"
    sample: list[str] = field(default_factory=list)  # "<hash>: prop old -> new; ..."
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    hubspot_seconds: float = 0.0
    diff_seconds: float = 0.0

    def as_row(self) -> dict[str, object]:
        """The columns of the command's table, in order."""
        return {
            "pump": self.pump,
            "object": self.object_type,
            "rows": self.rows,
            "changed": self.changed,
            "pushed": self.pushed,
            "rejected": self.rejected,
            "associated": self.associations,
            "requests": self.requests,
        }
