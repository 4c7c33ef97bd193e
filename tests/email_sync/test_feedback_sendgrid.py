"""The feedback loop against the local SendGrid server: lists follow consent and suppressions,
marketing sends carry the unsubscribe group, transactional ones do not."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import sqlalchemy as sa

from email_sync.sync import sync_all, sync_segment
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
    (group,) = [g for g in json.loads(groups.body) if g["name"] == "onramp marketing"]
    assert bodies[0]["asm"] == {"group_id": group["id"]}
    headers = bodies[0]["personalizations"][0]["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http://127.0.0.1:8080/unsubscribe/")
    assert "asm" not in bodies[1]
    assert "List-Unsubscribe" not in bodies[1]["personalizations"][0].get("headers", {})
    assert sendgrid_server.count("POST", "/v3/asm/groups") == 1


def test_suppression_pull_once_per_sync_all_and_incremental(
    engine, settings, segments, sendgrid_server, sg_provider
):
    settings = dataclasses.replace(settings, daily_email_cap=10, weekly_email_cap=10)
    sendgrid_server.add_suppression("bounces", "dev1@example.com", created=1_700_000_000)
    group = sendgrid_server.create_group("onramp marketing")
    sendgrid_server.add_group_suppression(group, "dev2@example.com")
    segments.create("new_signups", [member(n) for n in (1, 2, 3)])
    segments.create(
        "incident_affected",
        [member(n, incident_id="i", incident_title="Outage") for n in (1, 2, 3)],
        {"incident_id": "text", "incident_title": "text"},
    )
    specs = [
        spec("new_signups", email={"template": "welcome", "kind": "marketing"}),
        spec(
            "incident_affected",
            email={"template": "incident_affected", "kind": "transactional", "priority": 90},
        ),
    ]

    sync_all(engine, settings, specs, AS_OF, provider=sg_provider)

    assert sendgrid_server.count("GET", "/v3/suppression/bounces") == 1  # once, not per segment
    sent = {(m.recipient, m.custom_args["onramp_segment"]) for m in sendgrid_server.messages}
    assert sent == {
        ("dev2@example.com", "incident_affected"),  # group unsubscribe: marketing only
        ("dev3@example.com", "incident_affected"),
        ("dev3@example.com", "new_signups"),
    }
    with engine.connect() as conn:
        scopes = dict(
            conn.execute(sa.text("select email, scope from email_sync.suppressions")).all()
        )
    assert scopes == {"dev1@example.com": "all", "dev2@example.com": "marketing"}

    sync_all(engine, settings, specs, AS_OF, provider=sg_provider)
    second = sendgrid_server.requests_to("GET", "/v3/suppression/bounces")[-1]
    assert second.query.get("start_time") in (["1700000000"], "1700000000")


def test_one_click_unsubscribes_are_pushed_to_the_sendgrid_group(
    engine, settings, segments, sendgrid_server, sg_provider
):
    from email_sync.feedback.schema import ensure_feedback_schema_on
    from email_sync.feedback.unsubscribe import unsubscribe

    segments.create("new_signups", [member(1), member(2)])
    marketing = spec("new_signups", email={"template": "welcome", "kind": "marketing"})
    sync_all(engine, settings, [marketing], AS_OF, provider=sg_provider)
    ensure_feedback_schema_on(engine)
    with engine.begin() as conn:
        message_id = conn.execute(
            sa.text("select message_id from email_sync.messages where email = 'dev1@example.com'")
        ).scalar_one()
        unsubscribe(conn, message_id, "marketing")

    sync_all(engine, settings, [marketing], AS_OF, provider=sg_provider)

    client = sendgrid_server.client().client
    groups = json.loads(client.asm.groups.get().body)
    (group,) = [g for g in groups if g["name"] == "onramp marketing"]
    suppressed = json.loads(client.asm.groups._(group["id"]).suppressions.get().body)
    assert suppressed == ["dev1@example.com"]
    pushes = sendgrid_server.count("POST", f"/v3/asm/groups/{group['id']}/suppressions")
    sync_all(engine, settings, [marketing], AS_OF, provider=sg_provider)
    assert sendgrid_server.count("POST", f"/v3/asm/groups/{group['id']}/suppressions") == pushes


def test_single_segment_sync_keeps_group_unsubscribes_to_marketing(
    engine, settings, segments, sendgrid_server, sg_provider
):
    group = sendgrid_server.create_group("Product tips")
    sendgrid_server.add_group_suppression(group, "dev1@example.com")
    segments.create(
        "incident_affected",
        [member(1, incident_id="i", incident_title="Outage")],
        {"incident_id": "text", "incident_title": "text"},
    )
    incident = spec(
        "incident_affected", email={"template": "incident_affected", "kind": "transactional"}
    )
    result = sync_segment(engine, settings, incident, AS_OF, provider=sg_provider)
    assert result.sent == 1  # the refresh ran (something to send) and scoped it to marketing
    with engine.connect() as conn:
        scope = conn.execute(sa.text("select scope from email_sync.suppressions")).scalar_one()
    assert scope == "marketing"
