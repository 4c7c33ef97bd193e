"""The feedback loop against the local SendGrid server: lists follow consent and suppressions,
marketing sends carry the unsubscribe group, transactional ones do not."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from email_sync.sync import sync_segment
from tests.email_sync.conftest import member, spec

AS_OF = date(2026, 11, 26)
COLS = {"stage": "text"}


def sandbox(n: int, **extra):
    return member(n, stage="sandbox", **extra)


def test_consent_turned_off_removes_the_developer_from_the_list(
    engine, settings, segments, sendgrid_server, sg_provider
):
    rows = [sandbox(n) for n in (1, 2, 3)]
    segments.create("stage_sandbox", rows, COLS)
    s = spec("stage_sandbox", list="Stage: sandbox", custom_fields=["stage"])
    sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    list_id = sendgrid_server.list_id("Stage: sandbox")
    assert sendgrid_server.list_members(list_id) == {f"dev{n}@example.com" for n in (1, 2, 3)}

    # dev2 withdraws consent but stays in the segment; dev3's address gets suppressed.
    segments.replace("stage_sandbox", [rows[0], sandbox(2, marketing_opt_in=False), rows[2]])
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into email_sync.suppressions (email, reason, source, scope) "
                "values ('dev3@example.com', 'unsubscribe: one-click', 'one-click', 'marketing')"
            )
        )
    second = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert second.exited == 0 and second.list_removed == 2
    assert sendgrid_server.list_members(list_id) == {"dev1@example.com"}

    # Consent given again (and the suppression lifted): back on the list.
    segments.replace("stage_sandbox", rows)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from email_sync.suppressions"))
    third = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    assert third.list_added == 2
    assert sendgrid_server.list_members(list_id) == {f"dev{n}@example.com" for n in (1, 2, 3)}


def test_marketing_sends_carry_the_unsubscribe_group(
    engine, settings, segments, sendgrid_server, sg_provider
):
    segments.create("new_signups", [member(1), member(2)])
    marketing = spec("new_signups", email={"template": "welcome", "kind": "marketing"})
    sync_segment(engine, settings, marketing, AS_OF, provider=sg_provider)
    sync_segment(engine, settings, marketing, AS_OF, provider=sg_provider)  # no change, no call

    segments.create(
        "incident_affected",
        [member(3, incident_id="i", incident_title="Outage")],
        {"incident_id": "text", "incident_title": "text"},
    )
    incident = spec(
        "incident_affected", email={"template": "incident_affected", "kind": "transactional"}
    )
    sync_segment(engine, settings, incident, AS_OF, provider=sg_provider)

    bodies = [r.json for r in sendgrid_server.requests_to("POST", "/v3/mail/send")]
    assert len(bodies) == 2
    groups = sendgrid_server.client().client.asm.groups.get()
    import json

    (group,) = [g for g in json.loads(groups.body) if g["name"] == "onramp marketing"]
    assert bodies[0]["asm"] == {"group_id": group["id"]}
    headers = bodies[0]["personalizations"][0]["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8080/unsubscribe/")
    assert "asm" not in bodies[1]
    assert "List-Unsubscribe" not in bodies[1]["personalizations"][0].get("headers", {})
    assert sendgrid_server.count("POST", "/v3/asm/groups") == 1
