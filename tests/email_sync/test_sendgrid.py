"""Delivery through the official sendgrid client to the local SendGrid server."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
import sqlalchemy as sa

from email_sync.providers import RetryPolicy
from email_sync.providers.sendgrid import HTML_TAG, SendGridProvider
from email_sync.sync import sync_segment
from tests.email_sync.conftest import ledger, member, spec, statuses

AS_OF = date(2026, 11, 26)
WELCOME = {"email": {"template": "welcome", "kind": "marketing"}}
INCIDENT = {
    "email": {
        "template": "incident_affected",
        "kind": "transactional",
        "priority": 90,
        "bypass_frequency_cap": True,
    }
}


def incident_member(n: int, **extra):
    return member(n, incident_id="inc-1", incident_title="Search returned 500s", **extra)


INCIDENT_COLUMNS = {"incident_id": "text", "incident_title": "text"}


def test_one_personalization_per_recipient_with_ledger_id(
    engine, settings, segments, sendgrid_server, sg_provider
):
    segments.create("new_signups", [member(1), member(2), member(3)])

    result = sync_segment(
        engine, settings, spec("new_signups", **WELCOME), AS_OF, provider=sg_provider
    )

    assert result.sent == 3
    assert sendgrid_server.count("POST", "/v3/mail/send") == 1
    body = sendgrid_server.requests_to("POST", "/v3/mail/send")[0].json
    assert [p["to"] for p in body["personalizations"]] == [
        [{"email": f"dev{n}@example.com"}] for n in (1, 2, 3)
    ] or len(body["personalizations"]) == 3
    rows = {r["email"]: r for r in ledger(engine)}
    for message in sendgrid_server.messages:
        row = rows[message.recipient]
        assert message.custom_args["onramp_message_id"] == row["message_id"]
        assert message.custom_args["onramp_campaign"] == "new_signups"
        assert message.custom_args["onramp_step"] == "1"
        assert {"onramp", "new_signups", "new_signups:step-1"} <= set(message.categories)
        assert row["provider_message_id"] == message.message_id
        assert "Dev" in message.substitutions[HTML_TAG]
        assert message.subject.startswith("Welcome aboard")


def test_no_change_sync_makes_no_provider_call(
    engine, settings, segments, sendgrid_server, sg_provider
):
    segments.create("new_signups", [member(1), member(2)])
    segments.create("stage_sandbox", [member(3, stage="sandbox")], {"stage": "text"})
    s_email = spec("new_signups", **WELCOME)
    s_list = spec("stage_sandbox", list="Stage: sandbox", custom_fields=["stage"])
    for s in (s_email, s_list):
        sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    sendgrid_server.reset()

    for s in (s_email, s_list):
        result = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
        assert (result.entered, result.exited, result.sent) == (0, 0, 0)

    assert sendgrid_server.requests == []


def test_list_sync_creates_fields_upserts_and_removes(
    engine, settings, segments, sendgrid_server, sg_provider
):
    cols = {"stage": "text", "events_7d": "bigint"}
    rows = [member(n, stage="sandbox", events_7d=10 * n) for n in (1, 2, 3)]
    rows.append(member(4, stage="sandbox", events_7d=1, marketing_opt_in=False))
    segments.create("stage_sandbox", rows, cols)
    s = spec("stage_sandbox", list="Stage: sandbox", custom_fields=["stage", "events_7d"])

    first = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    list_id = sendgrid_server.list_id("Stage: sandbox")
    assert list_id is not None
    assert sendgrid_server.list_members(list_id) == {f"dev{n}@example.com" for n in (1, 2, 3)}
    contact = sendgrid_server.contact_by_email("dev2@example.com")
    assert contact["custom_fields"] == {"stage": "sandbox", "events_7d": 20}
    assert (first.list_added, first.list_skipped) == (3, 1)

    segments.replace("stage_sandbox", rows[:1])
    second = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert second.exited == 3 and second.list_removed == 2
    assert sendgrid_server.list_members(list_id) == {"dev1@example.com"}
    assert sendgrid_server.contact_by_email("dev2@example.com") is not None  # contact kept
    assert sendgrid_server.count("POST", "/v3/marketing/lists") == 1
    assert sendgrid_server.count("POST", "/v3/marketing/field_definitions") == 2


def test_contacts_are_upserted_in_batches_within_limits(
    engine, settings, segments, sendgrid_server, sg_provider, monkeypatch
):
    monkeypatch.setattr("email_sync.providers.sendgrid.MAX_CONTACTS", 40)
    segments.create("stage_sandbox", [member(n, stage="x") for n in range(100)], {"stage": "text"})
    s = spec("stage_sandbox", list="L", custom_fields=["stage"])

    sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    sizes = [
        len(r.json["contacts"])
        for r in sendgrid_server.requests_to("PUT", "/v3/marketing/contacts")
    ]
    assert sizes == [40, 40, 20]
    assert len(sendgrid_server.list_members(sendgrid_server.list_id("L"))) == 100
    assert sendgrid_server.count("GET", "/v3/marketing/contacts/imports/*") >= 3


def test_mail_send_batches_hold_at_most_1000_personalizations(
    engine, settings, segments, sendgrid_server, sg_provider
):
    segments.create(
        "incident_affected", [incident_member(n) for n in range(2300)], INCIDENT_COLUMNS
    )

    result = sync_segment(
        engine,
        settings,
        spec("incident_affected", **INCIDENT),
        AS_OF,
        provider=sg_provider,
        initial="send",  # a first sync of 2,300 members is recorded without sending by default
    )

    sizes = [
        len(r.json["personalizations"])
        for r in sendgrid_server.requests_to("POST", "/v3/mail/send")
    ]
    assert sorted(sizes) == [300, 1000, 1000]
    assert result.sent == 2300 and len(sendgrid_server.messages) == 2300


def test_429_storm_waits_for_reset_and_sends_once(
    engine, settings, segments, sendgrid_server, sg_provider, sleeps
):
    segments.create("incident_affected", [incident_member(n) for n in range(5)], INCIDENT_COLUMNS)
    sendgrid_server.fail_next(6, status=429, reset_in=2.0, path="/v3/mail/send")

    result = sync_segment(
        engine, settings, spec("incident_affected", **INCIDENT), AS_OF, provider=sg_provider
    )

    assert result.sent == 5
    assert sendgrid_server.count("POST", "/v3/mail/send") == 7
    assert len(sendgrid_server.messages) == 5
    assert len(sleeps.waits) == 6 and all(0.2 <= w <= 3.5 for w in sleeps.waits)


def test_rate_limit_wait_is_bounded(engine, settings, segments, sendgrid_server, sleeps):
    from email_sync.providers import RetryPolicy

    provider = SendGridProvider(
        sendgrid_server.api_key,
        settings.email_from,
        host=sendgrid_server.url,
        timeout_s=2,
        retry=RetryPolicy(max_rate_limit_hits=3, sleep=sleeps),
    )
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    sendgrid_server.fail_next(50, status=429, reset_in=1.0, path="/v3/mail/send")

    result = sync_segment(
        engine, settings, spec("incident_affected", **INCIDENT), AS_OF, provider=provider
    )

    assert (result.sent, result.failed) == (0, 1)
    assert sendgrid_server.count("POST", "/v3/mail/send") == 4
    assert "still rate limited" in ledger(engine)[0]["reason"]


def test_5xx_is_retried_with_backoff(
    engine, settings, segments, sendgrid_server, sg_provider, sleeps
):
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    sendgrid_server.fail_next(2, status=503, path="/v3/mail/send")

    result = sync_segment(
        engine, settings, spec("incident_affected", **INCIDENT), AS_OF, provider=sg_provider
    )

    assert result.sent == 1 and len(sendgrid_server.messages) == 1
    assert len(sleeps.waits) == 2 and sleeps.waits[1] > sleeps.waits[0]


def test_timeout_after_send_is_not_resent(engine, settings, segments, sendgrid_server, sg_provider):
    """The local server processes a hung request after the client gave up, like SendGrid may."""
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    sendgrid_server.hang_next(1, 3.0, path="/v3/mail/send")
    s = spec("incident_affected", **INCIDENT)

    result = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    again = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert (result.sent, result.unconfirmed, again.sent) == (0, 1, 0)
    assert sendgrid_server.count("POST", "/v3/mail/send") == 1
    assert statuses(engine) == {"dev-0001/entry-1": "sent_unconfirmed"}


def test_a_400_batch_is_bisected_to_the_bad_row(
    engine, settings, segments, sendgrid_server, sg_provider, tmp_path
):
    """An empty subject makes SendGrid reject the whole request; only that row fails."""
    from email_sync.render import Renderer

    (tmp_path / "t").mkdir()
    for part, text in {
        "subject": "{{ subject_line }}",
        "html": "<p>{{ name }}</p>",
        "txt": "{{ name }}",
    }.items():
        (tmp_path / "t" / f"note.{part}.j2").write_text(text)
    rows = [member(n, subject_line=f"Hello {n}") for n in range(8)]
    rows[5]["subject_line"] = ""
    segments.create("notes", rows, {"subject_line": "text"})
    s = spec(
        "notes", email={"template": "note", "kind": "transactional", "bypass_frequency_cap": True}
    )

    result = sync_segment(
        engine, settings, s, AS_OF, provider=sg_provider, renderer=Renderer(tmp_path / "t")
    )

    assert (result.sent, result.failed) == (7, 1)
    bad = [r for r in ledger(engine) if r["status"] == "failed"]
    assert [r["member_key"] for r in bad] == ["dev-0005"]
    assert bad[0]["reason"].startswith("mail send (1): 400 The subject is required")
    assert sorted(m.recipient for m in sendgrid_server.messages) == sorted(
        f"dev{n}@example.com" for n in range(8) if n != 5
    )


def test_invalid_address_is_rejected_before_any_provider_call(
    engine, settings, segments, sendgrid_server, sg_provider
):
    rows = [incident_member(1), incident_member(2, email="not-an-address"), incident_member(3)]
    segments.create("incident_affected", rows, INCIDENT_COLUMNS)

    result = sync_segment(
        engine, settings, spec("incident_affected", **INCIDENT), AS_OF, provider=sg_provider
    )

    assert (result.sent, result.failed) == (2, 1)
    assert statuses(engine)["dev-0002/entry-1"] == "failed"
    assert ledger(engine)[1]["reason"] == "invalid address"
    assert all(b"not-an-address" not in r.body for r in sendgrid_server.requests)


def test_provider_suppression_lists_are_honoured(
    engine, settings, segments, sendgrid_server, sg_provider
):
    sendgrid_server.add_suppression("bounces", "dev2@example.com")
    group = sendgrid_server.create_group("Product tips")
    sendgrid_server.add_group_suppression(group, "dev3@example.com")
    segments.create("new_signups", [member(1), member(2), member(3)])

    result = sync_segment(
        engine, settings, spec("new_signups", **WELCOME), AS_OF, provider=sg_provider
    )

    assert (result.sent, result.suppressed) == (1, 2)
    assert [m.recipient for m in sendgrid_server.messages] == ["dev1@example.com"]
    with engine.connect() as conn:
        stored = dict(
            conn.execute(sa.text("select email, reason from email_sync.suppressions")).all()
        )
    assert stored["dev2@example.com"] == "bounce"
    assert stored["dev3@example.com"].startswith("group unsubscribe")


def test_failed_rows_are_retried_next_run_up_to_the_limit(
    engine, settings, segments, sendgrid_server, sg_provider
):
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    s = spec("incident_affected", **INCIDENT)
    limited = dataclasses.replace(settings, max_send_attempts=2)
    sendgrid_server.fail_next(2, status=403, path="/v3/mail/send")

    first = sync_segment(engine, limited, s, AS_OF, provider=sg_provider)
    second = sync_segment(engine, limited, s, AS_OF, provider=sg_provider)
    third = sync_segment(engine, limited, s, AS_OF, provider=sg_provider)

    assert (first.failed, second.retried, second.failed, third.retried) == (1, 1, 1, 0)
    assert third.gave_up == 1
    row = ledger(engine)[0]
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert row["reason"].startswith("mail send (1): 403")
    assert sendgrid_server.count("POST", "/v3/mail/send") == 2

    sendgrid_server.reset()
    fixed = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)  # limit back to 5
    assert fixed.sent == 1 and len(sendgrid_server.messages) == 1


def test_api_key_never_in_logs(engine, settings, segments, sendgrid_server, sg_provider, caplog):
    caplog.set_level("DEBUG")
    segments.create("new_signups", [member(1)])
    sendgrid_server.fail_next(1, status=500, path="/v3/mail/send")

    sync_segment(engine, settings, spec("new_signups", **WELCOME), AS_OF, provider=sg_provider)

    assert sendgrid_server.api_key not in caplog.text
    assert "dev1@example.com" not in caplog.text
    assert sendgrid_server.api_key not in repr(sg_provider)


@pytest.mark.parametrize("missing", ["key"])
def test_sendgrid_without_key_is_one_line(settings, missing):
    from email_sync.providers import ProviderError, get_provider

    with pytest.raises(ProviderError, match="^SENDGRID_API_KEY is not set"):
        get_provider(
            dataclasses.replace(settings, email_provider="sendgrid", sendgrid_api_key=None)
        )


def test_a_failed_import_job_leaves_members_pending_for_the_next_run(
    engine, settings, segments, sendgrid_server, sg_provider
):
    segments.create(
        "stage_sandbox", [member(n, stage="sandbox") for n in range(3)], {"stage": "text"}
    )
    s = spec("stage_sandbox", list="Stage: sandbox", custom_fields=["stage"])
    sendgrid_server.fail_jobs(1, status="failed")

    first = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    second = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert (first.list_added, first.list_pending) == (0, 3)
    assert "3 list contact(s) failed, retried next run" in first.notes
    assert (second.entered, second.list_added, second.list_pending) == (0, 3, 0)
    assert len(sendgrid_server.list_members(sendgrid_server.list_id("Stage: sandbox"))) == 3


def test_an_address_quoted_in_a_sendgrid_error_is_hashed(
    engine, settings, segments, sendgrid_server, sg_provider, caplog
):
    """SendGrid quotes the offending address in some 400s; logs and the ledger get its hash."""
    from email_sync.hashing import hash_email

    caplog.set_level("DEBUG")
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    quoted = "We found the first duplicate instance of [dev1@example.com] in the to field."
    sendgrid_server.fail_next(
        1, status=400, path="/v3/mail/send", body={"errors": [{"message": quoted}]}
    )

    result = sync_segment(
        engine, settings, spec("incident_affected", **INCIDENT), AS_OF, provider=sg_provider
    )

    assert result.failed == 1
    reason = ledger(engine)[0]["reason"]
    assert reason == (
        f"mail send (1): 400 We found the first duplicate instance of "
        f"[<email:{hash_email('dev1@example.com')}>] in the to field."
    )
    assert "mail send rejected for" in caplog.text
    assert "dev1@example.com" not in caplog.text


def test_a_leaver_does_not_take_an_address_another_member_keeps_off_the_list(
    engine, settings, segments, sendgrid_server, sg_provider
):
    """Segments keyed by developer and feature share one address across members."""
    rows = [
        member(1, member_key="dev-0001:/v1/a", stage="x"),
        member(1, member_key="dev-0001:/v1/b", stage="x"),
        member(2, stage="x"),
    ]
    segments.create("feature_list", rows, {"stage": "text"})
    s = spec("feature_list", list="Features")
    sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    list_id = sendgrid_server.list_id("Features")

    segments.replace("feature_list", rows[1:])
    one_left = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert (one_left.exited, one_left.list_removed, one_left.list_pending) == (1, 0, 0)
    assert sendgrid_server.list_members(list_id) == {"dev1@example.com", "dev2@example.com"}

    segments.replace("feature_list", rows[2:])
    both_left = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert (both_left.exited, both_left.list_removed) == (1, 1)
    assert sendgrid_server.list_members(list_id) == {"dev2@example.com"}


def test_an_invalid_address_is_kept_off_the_list(
    engine, settings, segments, sendgrid_server, sg_provider
):
    rows = [member(1, stage="x"), member(2, stage="x", email="dev2@example.com\n")]
    segments.create("stage_sandbox", rows, {"stage": "text"})
    s = spec("stage_sandbox", list="Stage: sandbox", custom_fields=["stage"])

    result = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert (result.list_added, result.list_skipped, result.list_pending) == (1, 1, 0)
    assert sendgrid_server.list_members(sendgrid_server.list_id("Stage: sandbox")) == {
        "dev1@example.com"
    }
    assert [c["email"] for c in sendgrid_server.contacts()] == ["dev1@example.com"]


def test_a_slow_import_job_does_not_hold_the_sync_and_the_next_run_confirms_it(
    engine, settings, segments, sendgrid_server, sleeps
):
    """A SendGrid import job still running after the short wait is recorded, its members wait
    in `pending_import`, and the next run confirms them without upserting them again."""
    import time

    segments.create(
        "stage_sandbox", [member(n, stage="sandbox") for n in range(3)], {"stage": "text"}
    )
    s = spec("stage_sandbox", list="Stage: sandbox", custom_fields=["stage"])
    provider = SendGridProvider.from_settings(
        dataclasses.replace(
            settings,
            sendgrid_api_key=sendgrid_server.api_key,
            sendgrid_api_host=sendgrid_server.url,
            import_wait_s=0.3,
        ),
        retry=RetryPolicy(max_retries=3, backoff_base_s=0.01, sleep=sleeps),
    )
    sendgrid_server.job_delay = 30.0  # SendGrid is slow to process the import

    start = time.monotonic()
    first = sync_segment(engine, settings, s, AS_OF, provider=provider)
    elapsed = time.monotonic() - start

    assert elapsed < 5
    assert (first.entered, first.list_added, first.list_pending) == (3, 0, 3)
    assert any("import job still running, confirmed next run" in n for n in first.notes)
    with engine.connect() as conn:
        jobs = conn.execute(
            sa.text("select job_id, segment, emails, status from email_sync.contact_imports")
        ).all()
        listed = conn.execute(
            sa.text(
                "select list_status, count(*) from email_sync.segment_membership "
                "where segment = 'stage_sandbox' group by 1"
            )
        ).all()
    assert [(j.segment, sorted(j.emails), j.status) for j in jobs] == [
        ("stage_sandbox", [f"dev{n}@example.com" for n in range(3)], "pending")
    ]
    assert listed == [("pending_import", 3)]

    sendgrid_server.complete_jobs()
    upserts = sendgrid_server.count("PUT", "/v3/marketing/contacts")
    second = sync_segment(engine, settings, s, AS_OF, provider=provider)

    assert (second.entered, second.list_added, second.list_pending) == (0, 3, 0)
    assert sendgrid_server.count("PUT", "/v3/marketing/contacts") == upserts  # not sent again
    assert len(sendgrid_server.list_members(sendgrid_server.list_id("Stage: sandbox"))) == 3
    with engine.connect() as conn:
        status, confirmed = conn.execute(
            sa.text("select status, confirmed_at is not null from email_sync.contact_imports")
        ).one()
        listed = (
            conn.execute(
                sa.text(
                    "select distinct list_status from email_sync.segment_membership "
                    "where segment = 'stage_sandbox'"
                )
            )
            .scalars()
            .all()
        )
    assert (status, confirmed, listed) == ("completed", True, ["synced"])


def test_a_pending_import_job_that_fails_requeues_its_members_with_the_reason(
    engine, settings, segments, sendgrid_server, sleeps
):
    """An import job confirmed `failed` by the next run sends its members back to pending_add,
    and that run upserts them again."""
    segments.create(
        "stage_sandbox", [member(n, stage="sandbox") for n in range(2)], {"stage": "text"}
    )
    s = spec("stage_sandbox", list="Stage: sandbox", custom_fields=["stage"])
    provider = SendGridProvider(
        api_key=sendgrid_server.api_key,
        sender=settings.email_from,
        host=sendgrid_server.url,
        timeout_s=2.0,
        retry=RetryPolicy(max_retries=3, backoff_base_s=0.01, sleep=sleeps),
        job_poll_timeout_s=0.2,
    )
    sendgrid_server.job_delay = 30.0
    sendgrid_server.fail_jobs(1, status="failed")

    first = sync_segment(engine, settings, s, AS_OF, provider=provider)
    sendgrid_server.complete_jobs()
    sendgrid_server.job_delay = 0.05
    second = sync_segment(engine, settings, s, AS_OF, provider=provider)

    assert (first.list_added, first.list_pending) == (0, 2)
    assert (second.list_added, second.list_pending) == (2, 0), second.notes
    assert sendgrid_server.count("PUT", "/v3/marketing/contacts") == 2
    with engine.connect() as conn:
        jobs = conn.execute(
            sa.text("select status, reason from email_sync.contact_imports order by requested_at")
        ).all()
    assert [tuple(j) for j in jobs] == [("failed", "import job failed"), ("completed", None)]
