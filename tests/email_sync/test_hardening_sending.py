"""Sending hardening: an ambiguous answer is never resent, and only the in-flight request is
left unconfirmed by a crash (official sendgrid client against the local SendGrid server)."""

from __future__ import annotations

from datetime import date

import pytest

from email_sync.sync import sync_segment
from tests.email_sync.conftest import ledger, member, spec, statuses

AS_OF = date(2026, 11, 26)
INCIDENT = {
    "email": {
        "template": "incident_affected",
        "kind": "transactional",
        "priority": 90,
        "bypass_frequency_cap": True,
    }
}
INCIDENT_COLUMNS = {"incident_id": "text", "incident_title": "text"}


def incident_member(n: int, **extra):
    return member(n, incident_id="inc-1", incident_title="Search returned 500s", **extra)


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_after_acceptance_is_sent_unconfirmed_not_resent(
    engine, settings, segments, sendgrid_server, sg_provider, status
):
    """SendGrid accepted the mail and then answered 5xx: a blind retry would send it twice."""
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    sendgrid_server.fail_next(1, status=status, path="/v3/mail/send", process=True)
    s = spec("incident_affected", **INCIDENT)

    result = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    again = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert (result.sent, result.unconfirmed, again.sent) == (0, 1, 0)
    assert len(sendgrid_server.messages) == 1  # delivered once, never twice
    assert sendgrid_server.count("POST", "/v3/mail/send") == 1
    assert statuses(engine) == {"dev-0001/entry-1": "sent_unconfirmed"}
    assert str(status) in ledger(engine)[0]["reason"]


def test_definite_rejection_503_is_still_retried(
    engine, settings, segments, sendgrid_server, sg_provider
):
    """503 (not processed) and connection refusals are definite: retrying them is safe."""
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    sendgrid_server.fail_next(1, status=503, path="/v3/mail/send")

    result = sync_segment(
        engine, settings, spec("incident_affected", **INCIDENT), AS_OF, provider=sg_provider
    )

    assert (result.sent, result.unconfirmed) == (1, 0)
    assert len(sendgrid_server.messages) == 1


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs in this process (no except Exception)."""


def _kill(_seconds: float) -> None:
    raise Killed()


def _note_templates(tmp_path):
    from email_sync.render import Renderer

    (tmp_path / "t").mkdir()
    for part, text in {
        "subject": "{{ subject_line }}",
        "html": "<p>{{ name }}</p>",
        "txt": "{{ name }}",
    }.items():
        (tmp_path / "t" / f"note.{part}.j2").write_text(text)
    return Renderer(tmp_path / "t")


NOTE = {"email": {"template": "note", "kind": "transactional", "bypass_frequency_cap": True}}


def test_kill_during_429_wait_in_a_bisection_leaves_only_the_in_flight_request_unconfirmed(
    engine, settings, segments, sendgrid_server, tmp_path
):
    """8 rows, one SendGrid rejects (400): the batch is bisected. The process dies while the
    third request (rows 4-7) waits out a 429: rows 0-3 were sent and recorded, only rows 4-7
    (the request in flight) are unconfirmed after the next run reconciles."""
    from email_sync.providers import RetryPolicy
    from email_sync.providers.sendgrid import SendGridProvider

    renderer = _note_templates(tmp_path)
    rows = [member(n, subject_line=f"Hello {n}") for n in range(8)]
    rows[5]["subject_line"] = ""
    segments.create("notes", rows, {"subject_line": "text"})
    s = spec("notes", **NOTE)
    provider = SendGridProvider(
        sendgrid_server.api_key,
        settings.email_from,
        host=sendgrid_server.url,
        timeout_s=2,
        retry=RetryPolicy(max_retries=1, backoff_base_s=0.01, sleep=_kill),
    )
    real_call = provider._call
    sends = []

    def call(what, fn, idempotent=True):
        if what.startswith("mail send"):
            sends.append(what)
            if len(sends) == 3:  # the second half of the first bisection
                sendgrid_server.fail_next(1, status=429, reset_in=5.0, path="/v3/mail/send")
        return real_call(what, fn, idempotent)

    provider._call = call
    with pytest.raises(Killed):
        sync_segment(engine, settings, s, AS_OF, provider=provider, renderer=renderer)
    before = {m.recipient for m in sendgrid_server.messages}
    third = sendgrid_server.requests_to("POST", "/v3/mail/send")[2]
    in_flight = {p["to"][0]["email"] for p in third.json["personalizations"]}
    assert len(in_flight) < 8 and not before & in_flight

    again = SendGridProvider(
        sendgrid_server.api_key, settings.email_from, host=sendgrid_server.url, timeout_s=2
    )
    sync_segment(engine, settings, s, AS_OF, provider=again, renderer=renderer)

    got = statuses(engine)
    for n in range(8):
        address = f"dev{n}@example.com"
        expected = "sent_unconfirmed" if address in in_flight else "failed" if n == 5 else "sent"
        assert got[f"dev-{n:04d}/entry-1"] == expected, (n, got)
    recipients = [m.recipient for m in sendgrid_server.messages]
    assert len(recipients) == len(set(recipients)) == 7 - len(in_flight - {"dev5@example.com"})


def test_smtp_kill_mid_batch_leaves_only_the_in_flight_message_unconfirmed(
    engine, settings, segments
):
    """SMTP: each message is claimed and recorded on its own, so a kill while retrying the third
    message leaves two sent, one unconfirmed, and the rest for the next run."""
    from email_sync.providers import RetryPolicy
    from email_sync.providers.smtp import SmtpProvider, parse_smtp_url
    from tests.support.smtp_server import SmtpServer

    segments.create(
        "rate_limited", [member(n, events_429=30 + n) for n in range(6)], {"events_429": "int"}
    )
    s = spec("rate_limited", email={"template": "rate_limited", "kind": "transactional"})
    with SmtpServer() as server:
        provider = SmtpProvider(
            parse_smtp_url(server.url),
            "onramp@example.com",
            timeout_s=5,
            retry=RetryPolicy(max_retries=2, backoff_base_s=0.01, sleep=_kill),
        )
        real_send_one = provider._send_one
        seen = []

        def send_one(email):
            seen.append(email)
            if len(seen) == 3:
                server.reject_next(1, code=451)
            return real_send_one(email)

        provider._send_one = send_one
        with pytest.raises(Killed):
            sync_segment(engine, settings, s, AS_OF, provider=provider)
        assert len(server.messages) == 2
        sync_segment(
            engine,
            settings,
            s,
            AS_OF,
            provider=SmtpProvider(parse_smtp_url(server.url), "onramp@example.com", timeout_s=5),
        )
        delivered = len(server.messages)

    got = sorted(statuses(engine).values())
    assert got == ["sent"] * 5 + ["sent_unconfirmed"], got
    assert delivered == 5


def test_a_segment_with_email_and_list_sends_then_mirrors_the_list(
    engine, settings, segments, sendgrid_server, sg_provider
):
    """Per-request claims leave no transaction open for the list mirror that follows."""
    segments.create("signup_no_calls", [member(n) for n in range(3)])
    s = spec(
        "signup_no_calls",
        list="Signed up, no calls",
        email={"template": "signup_no_calls", "kind": "transactional"},
    )

    result = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert (result.sent, result.list_added) == (3, 3)
    assert len(sendgrid_server.list_members(sendgrid_server.list_id("Signed up, no calls"))) == 3
