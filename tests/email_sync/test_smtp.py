"""The SMTP channel against a real aiosmtpd server (auth, STARTTLS, implicit TLS, 4xx/5xx)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from email_sync.providers import RetryPolicy, get_provider
from email_sync.providers.smtp import SmtpProvider, parse_smtp_url
from email_sync.sync import sync_segment
from tests.email_sync.conftest import ledger, member, spec, statuses
from tests.support.smtp_server import SmtpServer

AS_OF = date(2026, 11, 26)
ALERT = {
    "email": {"template": "rate_limited", "kind": "transactional", "bypass_frequency_cap": True}
}


def provider_for(server: SmtpServer, sleeps) -> SmtpProvider:
    return SmtpProvider(
        parse_smtp_url(server.url),
        "onramp@example.com",
        timeout_s=5,
        retry=RetryPolicy(max_retries=2, backoff_base_s=0.01, sleep=sleeps),
        ssl_context=server.client_ssl_context()
        if server.url.startswith("smtps") or "starttls" in server.url
        else None,
    )


# No plain-text login: tests/test_secrets_tls.py checks that credentials without TLS are refused.
@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_smtp_delivers_multipart_email_with_auth(engine, settings, segments, sleeps, tls):
    segments.create(
        "rate_limited", [member(1, events_429=21), member(2, events_429=40)], {"events_429": "int"}
    )
    with SmtpServer(auth=("onramp", "s3cret"), tls=tls) as server:
        provider = provider_for(server, sleeps)
        result = sync_segment(
            engine, settings, spec("rate_limited", **ALERT), AS_OF, provider=provider
        )
        messages = server.messages

    assert result.sent == 2, [(r["status"], r["reason"]) for r in ledger(engine)]
    assert sorted(m.rcpt_tos[0] for m in messages) == ["dev1@example.com", "dev2@example.com"]
    msg = next(m for m in messages if m.rcpt_tos == ["dev2@example.com"])
    assert msg.subject == "Your API calls were rate limited 40 times"
    assert "40 of your calls" in msg.body("plain")
    assert "<code>429 Too Many Requests</code>" in msg.body("html")
    assert msg.message["X-Onramp-Message-Id"]
    assert msg.message["X-Onramp-Campaign"] == "rate_limited"
    assert msg.message["X-Onramp-Step"] == "1"
    assert "utm_campaign=rate_limited&amp;utm_content=step-1" in msg.body("html")


def test_smtp_retries_4xx_and_fails_5xx_with_the_server_reply(engine, settings, segments, sleeps):
    segments.create(
        "rate_limited", [member(1, events_429=21), member(2, events_429=22)], {"events_429": "int"}
    )
    with SmtpServer() as server:
        server.reject_next(1, code=451)  # first recipient: transient, retried
        provider = provider_for(server, sleeps)
        s = spec("rate_limited", **ALERT)
        first = sync_segment(engine, settings, s, AS_OF, provider=provider)
        assert first.sent == 2 and len(sleeps.waits) == 1, [
            (r["status"], r["reason"]) for r in ledger(engine)
        ]

        segments.replace("rate_limited", [member(3, events_429=23)])
        server.reject_next(1, code=550)
        second = sync_segment(engine, settings, s, AS_OF, provider=provider)

    assert second.failed == 1
    assert statuses(engine)["dev-0003/entry-1"] == "failed"


def test_smtp_url_from_settings(settings):
    provider = get_provider(
        dataclasses.replace(
            settings, email_provider="smtp", smtp_url="smtp://u:p%40ss@mail.local:587?starttls=true"
        )
    )
    assert isinstance(provider, SmtpProvider)
    t = provider.target
    assert (t.host, t.port, t.starttls, t.ssl, t.username, t.password) == (
        "mail.local",
        587,
        True,
        False,
        "u",
        "p@ss",
    )
    assert "p@ss" not in repr(t)
    assert parse_smtp_url("smtps://mail.local").port == 465
