"""The sample email in a sync's summary (Dagster metadata) shows a hashed identity, never the
member's address, name or company."""

from __future__ import annotations

from datetime import date

from email_sync.hashing import hash_key
from email_sync.sync import sync_segment
from tests.email_sync.conftest import member, spec

AS_OF = date(2026, 11, 26)


def test_sample_email_in_the_summary_uses_a_hashed_identity(engine, settings, segments, outbox):
    row = member(1, name="Janet Quux", company_name="Quux Robotics", email="janet@quux.example")
    segments.create("new_signups", [row])

    result = sync_segment(
        engine,
        settings,
        spec("new_signups", email={"template": "welcome", "kind": "marketing"}),
        AS_OF,
        dry_run=True,
    )

    shown = result.sample_markdown + result.sample_html
    assert result.sample_markdown.startswith("**Subject:**"), result.sample_markdown
    for secret in ("Janet", "Quux", "janet@quux.example", "dev-0001"):
        assert secret not in shown, secret
    assert hash_key("dev-0001") in result.sample_markdown
