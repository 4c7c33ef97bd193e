"""One-click unsubscribe end to end: outbox .eml headers parsed with the `email` package, a real
POST to the running receiver, and what the next sync does with it."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import time
import urllib.error
import urllib.request
from datetime import date

import pytest
import sqlalchemy as sa

from email_sync.feedback.links import MarketingNotConfigured, make_token, read_token
from email_sync.feedback.schema import ensure_feedback_schema_on
from email_sync.feedback.serve import ReceiverThread
from email_sync.sync import sync_segment
from tests.email_sync.conftest import member, spec, statuses

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
INCIDENT_COLUMNS = {"incident_id": "text", "incident_title": "text"}
POSTAL = "Example Inc., 500 Market Street, San Francisco, CA 94105"


def incident_member(n: int, incident: str = "inc-1"):
    return member(n, incident_id=incident, incident_title="Search returned 500s")


@pytest.fixture
def fb_settings(settings, sendgrid_server):
    return dataclasses.replace(
        settings,
        unsubscribe_secret="test-secret",
        postal_address=POSTAL,
        unsubscribe_mailto="unsubscribe@example.com",
        webhook_public_key=sendgrid_server.webhook_public_key,
        daily_email_cap=10,
        weekly_email_cap=10,
    )


@pytest.fixture
def receiver(engine, fb_settings):
    ensure_feedback_schema_on(engine)
    with ReceiverThread(fb_settings, engine) as r:
        yield r


@pytest.fixture
def live(fb_settings, receiver):
    """Settings whose unsubscribe links point at the running receiver."""
    return dataclasses.replace(fb_settings, public_url=receiver.url)


def emls(settings) -> dict[str, email.message.EmailMessage]:
    out = {}
    for path in sorted(settings.outbox_dir.glob("*.eml")):
        raw = path.read_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        msg.raw_bytes = raw  # as written, for checks on the header bytes themselves
        out[msg["To"]] = msg
    return out


def one_click_url(msg) -> str:
    raw = str(msg["List-Unsubscribe"])
    urls = re.findall(r"<(https?://[^>]+)>", raw)
    assert len(urls) == 1, raw
    return urls[0]


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def suppressions(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select email, scope from email_sync.suppressions")).all())


def test_marketing_eml_has_one_click_headers_and_footer(engine, live, segments):
    segments.create("new_signups", [member(1), member(2)])
    segments.create("incident_affected", [incident_member(3)], INCIDENT_COLUMNS)
    assert sync_segment(engine, live, spec("new_signups", **WELCOME), AS_OF).sent == 2
    assert sync_segment(engine, live, spec("incident_affected", **INCIDENT), AS_OF).sent == 1

    messages = emls(live)
    for n in (1, 2):
        msg = messages[f"dev{n}@example.com"]
        url = one_click_url(msg)
        assert url.startswith(f"{live.public_url}/unsubscribe/")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "<mailto:unsubscribe@example.com?subject=unsubscribe" in str(msg["List-Unsubscribe"])
        head = msg.raw_bytes.split(b"\n\n", 1)[0]
        assert b"=?utf-8?" not in head  # written verbatim, no RFC 2047 encoded-word
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\n" in head
        token = url.rsplit("/", 1)[1]
        assert "example.com" not in token and "dev" not in token  # no address in clear
        text = msg.get_body(("plain",)).get_content()
        assert POSTAL in text and url in text
        assert POSTAL in msg.get_body(("html",)).get_content()
    incident = messages["dev3@example.com"]
    assert incident["List-Unsubscribe"] is None and incident["List-Unsubscribe-Post"] is None


def test_one_click_post_suppresses_marketing_but_not_incidents(engine, live, segments):
    segments.create("new_signups", [member(1), member(2)])
    welcome = spec("new_signups", **WELCOME)
    sync_segment(engine, live, welcome, AS_OF)
    url = one_click_url(emls(live)["dev1@example.com"])

    status, page = http("POST", url, b"List-Unsubscribe=One-Click")
    assert status == 200 and "unsubscribed" in page
    assert suppressions(engine) == {"dev1@example.com": "marketing"}

    # Both re-enter the marketing segment; dev1 also gets an incident notice.
    segments.replace("new_signups", [])
    sync_segment(engine, live, welcome, AS_OF)
    segments.replace("new_signups", [member(1), member(2)])
    again = sync_segment(engine, live, welcome, AS_OF)
    assert again.sent == 1 and again.suppressed == 1
    assert statuses(engine, "new_signups")["dev-0001/entry-2"] == "suppressed"
    segments.create("incident_affected", [incident_member(1)], INCIDENT_COLUMNS)
    notice = sync_segment(engine, live, spec("incident_affected", **INCIDENT), AS_OF)
    assert notice.sent == 1


def test_get_alone_suppresses_nothing(engine, live, segments):
    segments.create("new_signups", [member(1)])
    welcome = spec("new_signups", **WELCOME)
    sync_segment(engine, live, welcome, AS_OF)
    url = one_click_url(emls(live)["dev1@example.com"])

    status, page = http("GET", url)
    assert status == 200 and '<form method="post">' in page
    assert suppressions(engine) == {}
    segments.replace("new_signups", [])
    sync_segment(engine, live, welcome, AS_OF)
    segments.replace("new_signups", [member(1)])
    assert sync_segment(engine, live, welcome, AS_OF).sent == 1


def test_forged_or_foreign_tokens_change_nothing(engine, live, segments, receiver):
    segments.create("new_signups", [member(1)])
    sync_segment(engine, live, spec("new_signups", **WELCOME), AS_OF)
    url = one_click_url(emls(live)["dev1@example.com"])
    token = url.rsplit("/", 1)[1]
    message_id, scope = read_token("test-secret", token)
    forged = make_token("another-secret", message_id, scope)
    assert (
        http("POST", f"{receiver.url}/unsubscribe/{forged}", b"List-Unsubscribe=One-Click")[0]
        == 404
    )
    assert http("POST", url, b"something=else")[0] == 400  # not a one-click body
    assert suppressions(engine) == {}


def test_resubscribe_event_lets_mail_through_again(
    engine, live, segments, sendgrid_server, receiver
):
    segments.create("new_signups", [member(1)])
    welcome = spec("new_signups", **WELCOME)
    sync_segment(engine, live, welcome, AS_OF)
    url = one_click_url(emls(live)["dev1@example.com"])
    assert http("POST", url, b"List-Unsubscribe=One-Click")[0] == 200
    assert suppressions(engine) == {"dev1@example.com": "marketing"}

    time.sleep(1.1)  # the resubscribe happens after the unsubscribe (second resolution)
    event = {
        "email": "dev1@example.com",
        "timestamp": int(time.time()),
        "event": "group_resubscribe",
        "sg_event_id": "resub-1",
        "asm_group_id": 10001,
    }
    assert sendgrid_server.post_events(f"{receiver.url}/sendgrid/events", [event]) == 200
    assert suppressions(engine) == {}
    segments.replace("new_signups", [])
    sync_segment(engine, live, welcome, AS_OF)
    segments.replace("new_signups", [member(1)])
    assert sync_segment(engine, live, welcome, AS_OF).sent == 1


def test_marketing_refused_without_postal_address_or_url(engine, settings, segments):
    real = dataclasses.replace(settings, email_provider="smtp", smtp_url="smtp://127.0.0.1:1")
    segments.create("new_signups", [member(1)])
    with pytest.raises(MarketingNotConfigured, match="ONRAMP_PUBLIC_URL") as info:
        sync_segment(engine, real, spec("new_signups", **WELCOME), AS_OF)
    assert "ONRAMP_POSTAL_ADDRESS" in str(info.value) and "\n" not in str(info.value)
    plain_http = dataclasses.replace(
        real, public_url="http://x.example", unsubscribe_secret="s", postal_address=POSTAL
    )
    with pytest.raises(MarketingNotConfigured, match="https"):
        sync_segment(engine, plain_http, spec("new_signups", **WELCOME), AS_OF)


def test_smtp_serialisation_keeps_list_unsubscribe_parseable():
    from email.policy import SMTP

    from email_sync.feedback.links import UnsubscribeLinks
    from email_sync.providers.base import OutgoingEmail
    from email_sync.providers.mime import build_mime

    links = UnsubscribeLinks(
        "https://mail.example.com", "s" * 32, POSTAL, mailto="unsubscribe@example.com"
    )
    headers = links.headers("0b6c1c7e-3f0e-4a4e-9d55-2f9a7a0f4c11", "marketing")
    out = OutgoingEmail("m", "dev1@example.com", "Hi", "<p>x</p>", "x", "seg", "t", headers)
    wire = build_mime(out, "onramp@example.com").as_bytes(policy=SMTP)
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" not in head
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == headers["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://mail.example.com/unsubscribe/")


def test_a_schema_from_before_the_scope_column_is_upgraded_by_the_next_sync(engine, live, segments):
    with engine.begin() as conn:
        conn.execute(sa.text("alter table email_sync.suppressions drop column scope"))
        conn.execute(
            sa.text(
                "insert into email_sync.suppressions (email, reason, source) "
                "values ('dev1@example.com', 'bounce', 'sendgrid')"
            )
        )
    segments.create("new_signups", [member(1), member(2)])
    result = sync_segment(engine, live, spec("new_signups", **WELCOME), AS_OF)
    assert (result.sent, result.suppressed) == (1, 1)
    assert suppressions(engine) == {"dev1@example.com": "all"}  # older rows keep meaning "all"
