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
