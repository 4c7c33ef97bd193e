"""The default channel: each email is an `.eml` file plus a line in `index.jsonl`.

Files are written to a temporary name and renamed, so a file that exists is complete: after a crash
`was_delivered` can answer exactly by looking for it, and the ledger resends only what is missing.
List operations are journalled to `lists/<list>.jsonl` so a demo shows what SendGrid would get.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from email_sync.providers.base import (
    Contact,
    ListOutcome,
    OutgoingEmail,
    Provider,
    SendOutcome,
)
from email_sync.providers.mime import build_mime


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "list"


class OutboxProvider(Provider):
    """Writes each email as an .eml file in the outbox folder (the default, no network)."""

    name = "outbox"

    def __init__(self, outbox_dir: Path, sender: str) -> None:
        super().__init__()
        self.dir = Path(outbox_dir)
        self.sender = sender

    def _path(self, message_id: str) -> Path:
        return self.dir / f"{message_id}.eml"

    def send(self, emails: list[OutgoingEmail]) -> list[SendOutcome]:
        start = time.perf_counter()
        self.dir.mkdir(parents=True, exist_ok=True)
        outcomes = []
        index_lines = []
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for email in emails:
            path = self._path(email.message_id)
            tmp = path.with_suffix(".eml.tmp")
            tmp.write_bytes(bytes(build_mime(email, self.sender)))
            os.replace(tmp, path)
            index_lines.append(
                json.dumps(
                    {
                        "message_id": email.message_id,
                        "segment": email.segment,
                        "template": email.template,
                        "to": email.to,
                        "subject": email.subject,
                        "file": path.name,
                        "written_at": now,
                    }
                )
            )
            outcomes.append(SendOutcome(email.message_id, "sent", None, email.message_id))
        with (self.dir / "index.jsonl").open("a") as index:
            index.write("".join(line + "\n" for line in index_lines))
        self.calls += 1
        self.wait_seconds += time.perf_counter() - start
        return outcomes

    def was_delivered(self, message_id: str) -> bool | None:
        return self._path(message_id).exists()

    def sync_list(
        self,
        list_name: str,
        field_types: dict[str, str],
        upserts: list[Contact],
        removals: list[str],
    ) -> ListOutcome:
        start = time.perf_counter()
        folder = self.dir / "lists"
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with (folder / f"{_slug(list_name)}.jsonl").open("a") as journal:
            for contact in upserts:
                row = {"op": "upsert", "list": list_name, "email": contact.email, "at": now}
                row["first_name"] = contact.first_name
                row["custom_fields"] = contact.fields
                journal.write(json.dumps(row, default=str) + "\n")
            for email in removals:
                journal.write(
                    json.dumps({"op": "remove", "list": list_name, "email": email, "at": now})
                    + "\n"
                )
        self.calls += 1
        self.wait_seconds += time.perf_counter() - start
        return ListOutcome(upserted={c.email for c in upserts}, removed=set(removals))
