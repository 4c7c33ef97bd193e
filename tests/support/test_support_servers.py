"""The local SendGrid and SMTP servers keep the contract onramp builds on.

Driven the way onramp drives them: the official ``sendgrid`` client (python-http-client over urllib)
and ``smtplib``. If these fail, onramp's email tests would be testing against a fiction.
"""

from __future__ import annotations

import http.client
import http.server
import json
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from python_http_client import exceptions as http_exc
from sendgrid.helpers.mail import Category, CustomArg, Mail

from tests.support.sendgrid_server import SendGridServer
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def sg() -> Iterator[SendGridServer]:
    with SendGridServer(api_key="SG.test-key") as server:
        yield server


@pytest.fixture
def client(sg: SendGridServer) -> Any:
    return sg.client(timeout=5)


def mail_body(*emails: str, **extra: Any) -> dict[str, Any]:
    """A valid v3 mail/send body with one personalization per recipient (as onramp sends)."""
    body: dict[str, Any] = {
        "personalizations": [
            {"to": [{"email": e}], "custom_args": {"member_key": f"m{i}"}}
            for i, e in enumerate(emails)
        ],
        "from": {"email": "onramp@example.com", "name": "Onramp"},
        "subject": "Welcome",
        "content": [
            {"type": "text/plain", "value": "Hello"},
            {"type": "text/html", "value": "<p>Hello</p>"},
        ],
        "categories": ["onramp", "welcome"],
        "custom_args": {"segment": "new_signups"},
    }
    body.update(extra)
    return body


def errors_of(exc: http_exc.HTTPError) -> list[dict[str, Any]]:
    return json.loads(exc.body)["errors"]


def wait_job(client: Any, job_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = json.loads(client.client.marketing.contacts.imports._(job_id).get().body)
        if status["status"] != "pending" or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


# ---------------------------------------------------------------------- mail send


def test_mail_send_202_with_message_id_and_one_record_per_recipient(
    sg: SendGridServer, client: Any
) -> None:
    response = client.client.mail.send.post(
        request_body=mail_body("a@example.com", "B@example.com")
    )

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert message_id
    assert [m.recipient for m in sg.messages] == ["a@example.com", "B@example.com"]
    first = sg.messages[0]
    assert first.message_id == message_id
    assert first.sg_message_id.startswith(message_id)
    assert first.subject == "Welcome"
    assert first.text == "Hello" and first.html == "<p>Hello</p>"
    assert first.custom_args == {"segment": "new_signups", "member_key": "m0"}
    assert first.categories == ["onramp", "welcome"]
    assert sg.count("POST", "/v3/mail/send") == 1
    assert sg.requests_to("POST", "/v3/mail/send")[0].json["subject"] == "Welcome"


def test_mail_built_with_the_sendgrid_helpers_is_accepted(sg: SendGridServer, client: Any) -> None:
    message = Mail(
        from_email="onramp@example.com",
        to_emails=["x@example.com", "y@example.com"],
        subject="Hi {{name}}",
        plain_text_content="plain",
        html_content="<b>html</b>",
        is_multiple=True,
    )
    message.category = Category("onramp")
    message.custom_arg = CustomArg("run", "r1")

    response = client.send(message)

    assert response.status_code == 202
    assert sorted(m.recipient for m in sg.messages) == ["x@example.com", "y@example.com"]
    assert {m.personalization_index for m in sg.messages} == {0, 1}
    assert sg.messages[0].custom_args == {"run": "r1"}


def test_bad_address_is_a_400_naming_its_field(sg: SendGridServer, client: Any) -> None:
    body = mail_body("ok@example.com", "not-an-address", "fine@example.com")

    with pytest.raises(http_exc.BadRequestsError) as caught:
        client.client.mail.send.post(request_body=body)

    assert caught.value.status_code == 400
    errors = errors_of(caught.value)
    assert errors[0]["field"] == "personalizations.1.to.0.email"
    assert errors[0]["message"] == "Does not contain a valid address."
    assert errors[0]["help"].startswith("http")
    assert sg.messages == []  # nothing of a rejected request is sent


def _too_many_personalizations() -> dict[str, Any]:
    return mail_body(*[f"u{i}@example.com" for i in range(1001)])


def _too_many_recipients() -> dict[str, Any]:
    body = mail_body(*[f"u{i}@example.com" for i in range(600)])
    for i, p in enumerate(body["personalizations"]):
        p["cc"] = [{"email": f"cc{i}@example.com"}]
    return body


@pytest.mark.parametrize(
    ("make_body", "field"),
    [
        (
            lambda: {k: v for k, v in mail_body("a@example.com").items() if k != "from"},
            "from.email",
        ),
        (lambda: mail_body("a@example.com", personalizations=[]), "personalizations"),
        (_too_many_personalizations, "personalizations"),
        (_too_many_recipients, "personalizations"),
        (lambda: mail_body("a@example.com", "A@example.com"), "personalizations.1.to.0.email"),
        (lambda: mail_body("a@example.com", subject=None), "subject"),
        (lambda: mail_body("a@example.com", content=[]), "content"),
        (
            lambda: mail_body(
                "a@example.com",
                content=[
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ],
            ),
            "content.0.type",
        ),
        (lambda: mail_body("a@example.com", categories=[f"c{i}" for i in range(11)]), "categories"),
        (lambda: mail_body("a@example.com", categories=["a", "a"]), "categories"),
        (lambda: mail_body("a@example.com", categories=["x" * 256]), "categories.0"),
        (lambda: mail_body("a@example.com", custom_args={"big": "x" * 10_001}), "custom_args"),
        (lambda: mail_body("a@example.com", send_at=int(time.time()) + 73 * 3600), "send_at"),
        (
            lambda: mail_body(
                "a@example.com", asm={"group_id": 1, "groups_to_display": list(range(26))}
            ),
            "asm.groups_to_display",
        ),
        (lambda: mail_body("a@example.com", batch_id="never-created"), "batch_id"),
        (lambda: mail_body("a@example.com", headers={"Subject": "x"}), "headers"),
    ],
    ids=[
        "no-from",
        "no-personalizations",
        "1001-personalizations",
        "1200-recipients",
        "duplicate-address",
        "no-subject",
        "no-content",
        "html-before-plain",
        "11-categories",
        "duplicate-category",
        "long-category",
        "custom-args-over-10k",
        "send-at-73h",
        "26-groups-to-display",
        "unknown-batch",
        "reserved-header",
    ],
)
def test_mail_send_limits_are_400s(
    sg: SendGridServer, client: Any, make_body: Any, field: str
) -> None:
    body = make_body()
    if body.get("subject", "") is None:
        del body["subject"]

    with pytest.raises(http_exc.BadRequestsError) as caught:
        client.client.mail.send.post(request_body=body)

    assert field in [e["field"] for e in errors_of(caught.value)]
    assert sg.messages == []


def test_template_mail_needs_no_subject_and_batch_ids_come_from_mail_batch(
    sg: SendGridServer, client: Any
) -> None:
    created = client.client.mail.batch.post()
    assert created.status_code == 201
    batch_id = json.loads(created.body)["batch_id"]
    body = {
        "personalizations": [
            {"to": [{"email": "a@example.com"}], "dynamic_template_data": {"name": "Ada"}}
        ],
        "from": {"email": "onramp@example.com"},
        "template_id": "d-0123456789abcdef",
        "batch_id": batch_id,
        "send_at": int(time.time()) + 3600,
        "asm": {"group_id": 7, "groups_to_display": [7]},
    }

    assert client.client.mail.send.post(request_body=body).status_code == 202
    (message,) = sg.messages
    assert message.dynamic_template_data == {"name": "Ada"}
    assert message.batch_id == batch_id and message.asm_group_id == 7


def test_1000_personalizations_is_the_largest_accepted_batch(
    sg: SendGridServer, client: Any
) -> None:
    body = mail_body(*[f"u{i}@example.com" for i in range(1000)])

    assert client.client.mail.send.post(request_body=body).status_code == 202
    assert len(sg.messages) == 1000


def test_sandbox_mode_answers_200_and_delivers_nothing(sg: SendGridServer, client: Any) -> None:
    body = mail_body("a@example.com", mail_settings={"sandbox_mode": {"enable": True}})

    assert client.client.mail.send.post(request_body=body).status_code == 200
    assert sg.messages == []


def test_wrong_or_missing_key_is_401(sg: SendGridServer) -> None:
    import sendgrid

    wrong = sendgrid.SendGridAPIClient("SG.wrong", host=sg.url)
    wrong.client.timeout = 5
    with pytest.raises(http_exc.UnauthorizedError) as caught:
        wrong.client.mail.send.post(request_body=mail_body("a@example.com"))
    assert errors_of(caught.value)[0]["message"].startswith("The provided authorization grant")

    request = urllib.request.Request(f"{sg.url}/v3/asm/groups")
    with pytest.raises(urllib.error.HTTPError) as no_key:
        urllib.request.urlopen(request, timeout=5)
    assert no_key.value.code == 401
    assert json.loads(no_key.value.read()) == {
        "errors": [{"field": None, "message": "authorization required"}]
    }
    assert sg.messages == []


def test_suppressed_recipient_is_accepted_then_dropped(sg: SendGridServer, client: Any) -> None:
    sg.add_suppression("bounces", "gone@example.com")

    client.client.mail.send.post(request_body=mail_body("gone@example.com", "ok@example.com"))

    assert [(m.recipient, m.dropped) for m in sg.messages] == [
        ("gone@example.com", "bounces"),
        ("ok@example.com", None),
    ]


def test_substitutions_are_applied_per_personalization(sg: SendGridServer, client: Any) -> None:
    body = mail_body("a@example.com", "b@example.com")
    body["content"] = [
        {"type": "text/plain", "value": "-text-"},
        {"type": "text/html", "value": "-html-"},
    ]
    body["subject"] = "Hi -name-"
    for p, name in zip(body["personalizations"], ["Ada", "Bob"], strict=True):
        p["substitutions"] = {"-name-": name, "-text-": f"Dear {name}", "-html-": f"<p>{name}</p>"}

    client.client.mail.send.post(request_body=body)

    assert [(m.subject, m.text, m.html) for m in sg.messages] == [
        ("Hi Ada", "Dear Ada", "<p>Ada</p>"),
        ("Hi Bob", "Dear Bob", "<p>Bob</p>"),
    ]
    body["personalizations"][0]["substitutions"] = {"-name-": 1}
    with pytest.raises(http_exc.BadRequestsError) as caught:
        client.client.mail.send.post(request_body=body)
    assert errors_of(caught.value)[0]["field"] == "personalizations.0.substitutions"


def test_webhook_events_are_signed_like_sendgrid(sg: SendGridServer, client: Any) -> None:
    from sendgrid.helpers.eventwebhook import EventWebhook

    sg.add_suppression("unsubscribes", "off@example.com")
    response = client.client.mail.send.post(
        request_body=mail_body("a@example.com", "off@example.com")
    )
    message_id = response.headers["X-Message-Id"]

    events = sg.delivery_events()

    assert [(e["email"], e["event"]) for e in events] == [
        ("a@example.com", "processed"),
        ("a@example.com", "delivered"),
        ("off@example.com", "dropped"),
    ]
    assert all(e["sg_message_id"].startswith(message_id) for e in events)
    assert events[0]["member_key"] == "m0" and events[0]["segment"] == "new_signups"
    assert len({e["sg_event_id"] for e in events}) == 3
    bounce = sg.events("bounce", sg.messages[:1], sg_message_id=None)[0]
    assert "sg_message_id" not in bounce and bounce["type"] == "bounce"

    body = json.dumps(events).encode()
    headers = sg.sign_webhook(body)
    verifier = EventWebhook(sg.webhook_public_key)
    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    assert verifier.verify_signature(body.decode(), signature, timestamp)
    assert not verifier.verify_signature(body.decode() + " ", signature, timestamp)


def test_post_events_delivers_signed_json_to_a_receiver(sg: SendGridServer, client: Any) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            data = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((data, dict(self.headers.items())))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    client.client.mail.send.post(request_body=mail_body("a@example.com"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver) as receiver:
        thread = threading.Thread(
            target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            url = f"http://127.0.0.1:{receiver.server_address[1]}/webhook"
            status = sg.post_events(url, sg.events("open"))
        finally:
            receiver.shutdown()

    assert status == 200
    ((data, headers),) = received
    assert json.loads(data)[0]["event"] == "open"
    assert "X-Twilio-Email-Event-Webhook-Signature" in headers


# ---------------------------------------------------------------------- faults


def test_429_injection_raises_too_many_requests_with_reset_header(
    sg: SendGridServer, client: Any
) -> None:
    sg.fail_next(1, status=429, reset_in=3, path="/v3/mail/send")
    before = time.time()

    with pytest.raises(http_exc.TooManyRequestsError) as caught:
        client.client.mail.send.post(request_body=mail_body("a@example.com"))

    err = caught.value
    assert err.status_code == 429
    assert json.loads(err.body) == {"errors": [{"field": None, "message": "too many requests"}]}
    assert err.headers["X-RateLimit-Remaining"] == "0"
    assert before + 3 <= int(err.headers["X-RateLimit-Reset"]) <= before + 10
    assert sg.messages == []
    # Only the matching path was hit; the next send goes through.
    assert client.client.asm.groups.get().status_code == 200
    assert client.client.mail.send.post(request_body=mail_body("a@example.com")).status_code == 202
    assert [r.status for r in sg.requests_to("POST", "/v3/mail/send")] == [429, 202]


def test_500_injection_and_failure_after_processing(sg: SendGridServer, client: Any) -> None:
    sg.fail_next(1, status=500)
    with pytest.raises(http_exc.InternalServerError):
        client.client.mail.send.post(request_body=mail_body("a@example.com"))
    assert sg.messages == []

    sg.fail_next(1, status=503, process=True, method="POST")
    with pytest.raises(http_exc.ServiceUnavailableError):
        client.client.mail.send.post(request_body=mail_body("a@example.com"))
    assert [m.recipient for m in sg.messages] == ["a@example.com"]  # accepted, answer lost


def test_hang_makes_a_client_with_a_timeout_time_out(sg: SendGridServer) -> None:
    client = sg.client(timeout=0.3)
    sg.hang_next(1, seconds=2.5, path="/v3/mail/send")

    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        client.client.mail.send.post(request_body=mail_body("slow@example.com"))
    assert time.monotonic() - started < 2.0  # gave up before the server answered

    # The server still accepted it after the client gave up: the ambiguity onramp must reconcile.
    assert [m.recipient for m in sg.wait_for_messages(1, timeout=10)] == ["slow@example.com"]


def test_disconnect_after_accepting_leaves_the_client_without_an_answer(
    sg: SendGridServer, client: Any
) -> None:
    sg.disconnect_next(1, path="/v3/mail/send")

    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        client.client.mail.send.post(request_body=mail_body("cut@example.com"))

    assert [m.recipient for m in sg.wait_for_messages(1)] == ["cut@example.com"]
    assert [r.status for r in sg.requests] == [0]


def test_rate_limit_headers_on_every_response(sg: SendGridServer, client: Any) -> None:
    ok = client.client.asm.groups.get()
    with pytest.raises(http_exc.NotFoundError) as missing:
        client.client.marketing.lists._("nope").get()

    for headers in (ok.headers, missing.value.headers):
        assert int(headers["X-RateLimit-Limit"]) == 600
        assert 0 < int(headers["X-RateLimit-Remaining"]) <= 600
        assert int(headers["X-RateLimit-Reset"]) >= int(time.time())


def test_enforced_rate_limit_answers_429_once_the_window_is_used() -> None:
    with SendGridServer(rate_limit=2, enforce_rate_limit=True) as server:
        client = server.client(timeout=5)
        remaining = [client.client.asm.groups.get().headers["X-RateLimit-Remaining"] for _ in "ab"]
        with pytest.raises(http_exc.TooManyRequestsError) as caught:
            client.client.asm.groups.get()

    assert remaining == ["1", "0"]
    assert caught.value.headers["X-RateLimit-Remaining"] == "0"
    assert int(caught.value.headers["X-RateLimit-Reset"]) > time.time()


def test_reset_forgets_traffic_and_rules(sg: SendGridServer, client: Any) -> None:
    sg.fail_next(5, status=500)
    sg.reset()
    assert client.client.mail.send.post(request_body=mail_body("a@example.com")).status_code == 202
    sg.reset()
    assert sg.messages == [] and sg.requests == [] and sg.count() == 0


# ---------------------------------------------------------------------- marketing


def test_contacts_upsert_is_an_async_job_then_searchable(sg: SendGridServer, client: Any) -> None:
    sg.job_delay = 0.2
    created = client.client.marketing.field_definitions.post(
        request_body={"name": "stage", "field_type": "Text"}
    )
    stage_id = json.loads(created.body)["id"]
    assert stage_id.startswith("e") and stage_id.endswith("_T")
    quota_id = sg.create_field("quota_used_pct", "Number")
    made = client.client.marketing.lists.post(request_body={"name": "Stage: sandbox"})
    assert made.status_code == 201
    list_id = json.loads(made.body)["id"]
    body = {
        "list_ids": [list_id],
        "contacts": [
            {
                "email": "Ada@Example.com",
                "first_name": "Ada",
                "custom_fields": {stage_id: "sandbox"},
            },
            {"email": "bob@example.com", "custom_fields": {quota_id: 81.5}},
            {"email": "eve@example.com", "custom_fields": {quota_id: "lots"}},  # wrong type
        ],
    }

    accepted = client.client.marketing.contacts.put(request_body=body)

    assert accepted.status_code == 202
    job_id = json.loads(accepted.body)["job_id"]
    first = json.loads(client.client.marketing.contacts.imports._(job_id).get().body)
    assert first["status"] == "pending"
    done = wait_job(client, job_id)
    assert done["status"] == "errored"
    assert done["results"]["requested_count"] == 3
    assert done["results"]["created_count"] == 2
    assert done["results"]["errored_count"] == 1
    assert done["results"]["errors_url"].startswith(sg.url)

    found = client.client.marketing.contacts.search.emails.post(
        request_body={"emails": ["ada@example.com", "nobody@example.com"]}
    )
    result = json.loads(found.body)["result"]
    ada = result["ada@example.com"]["contact"]
    assert ada["email"] == "ada@example.com"  # lower-cased
    assert ada["first_name"] == "Ada"
    assert ada["list_ids"] == [list_id]
    assert ada["custom_fields"] == {"stage": "sandbox"}
    assert "error" in result["nobody@example.com"]
    listed = json.loads(client.client.marketing.lists._(list_id).get().body)
    assert listed["contact_count"] == 2

    # An upsert of an existing email updates rather than creates.
    again = client.client.marketing.contacts.put(
        request_body={"contacts": [{"email": "ADA@example.com", "last_name": "L"}]}
    )
    redone = wait_job(client, json.loads(again.body)["job_id"])
    assert redone["status"] == "completed"
    assert redone["results"]["updated_count"] == 1 and redone["results"]["created_count"] == 0


@pytest.mark.parametrize(
    ("contacts", "field"),
    [
        ([{"first_name": "no identifier"}], "contacts[0]"),
        ([{"email": "ok@example.com"}, {"email": "not an email"}], "contacts[1].email"),
        (
            [{"email": "ok@example.com", "custom_fields": {"e99_T": "x"}}],
            "contacts[0].custom_fields.e99_T",
        ),
        ([], "contacts"),
        ([{"external_id": str(i)} for i in range(30_001)], "contacts"),
    ],
    ids=["no-identifier", "bad-email", "unknown-field", "empty", "30001-contacts"],
)
def test_contacts_put_rejects_what_sendgrid_rejects(
    sg: SendGridServer, client: Any, contacts: list[dict[str, Any]], field: str
) -> None:
    with pytest.raises(http_exc.BadRequestsError) as caught:
        client.client.marketing.contacts.put(request_body={"contacts": contacts})

    assert field in [e["field"] for e in errors_of(caught.value)]
    sg.complete_jobs()
    assert sg.contacts() == []


def test_contacts_put_over_6_mb_is_refused(sg: SendGridServer, client: Any) -> None:
    contacts = [{"email": f"u{i}@example.com", "first_name": "x" * 300} for i in range(20_000)]

    with pytest.raises(http_exc.PayloadTooLargeError):
        client.client.marketing.contacts.put(request_body={"contacts": contacts})


def test_injected_job_failure_and_contact_deletion(sg: SendGridServer, client: Any) -> None:
    sg.fail_jobs(1, status="failed")
    failed = client.client.marketing.contacts.put(
        request_body={"contacts": [{"email": "a@example.com"}]}
    )
    status = wait_job(client, json.loads(failed.body)["job_id"])
    assert status["status"] == "failed" and status["results"]["errored_count"] == 1
    assert sg.contacts() == []

    put = client.client.marketing.contacts.put(
        request_body={"contacts": [{"email": "a@example.com"}, {"external_id": "dev-2"}]}
    )
    assert wait_job(client, json.loads(put.body)["job_id"])["status"] == "completed"
    assert json.loads(client.client.marketing.contacts.count.get().body)["contact_count"] == 2
    ids = ",".join(c["id"] for c in sg.contacts() if c.get("external_id") == "dev-2")
    deleted = client.client.marketing.contacts.delete(query_params={"ids": ids})
    assert deleted.status_code == 202
    sg.complete_jobs()
    assert [c["email"] for c in sg.contacts()] == ["a@example.com"]


def test_search_emails_404_when_none_found(sg: SendGridServer, client: Any) -> None:
    with pytest.raises(http_exc.NotFoundError):
        client.client.marketing.contacts.search.emails.post(
            request_body={"emails": ["nobody@example.com"]}
        )
    with pytest.raises(http_exc.BadRequestsError):
        client.client.marketing.contacts.search.emails.post(
            request_body={"emails": [f"u{i}@example.com" for i in range(101)]}
        )


def test_removing_contacts_from_a_list_keeps_the_contacts(sg: SendGridServer, client: Any) -> None:
    list_id = sg.create_list("Signed up, no calls")
    put = client.client.marketing.contacts.put(
        request_body={
            "list_ids": [list_id],
            "contacts": [{"email": "a@example.com"}, {"email": "b@example.com"}],
        }
    )
    wait_job(client, json.loads(put.body)["job_id"])
    found = client.client.marketing.contacts.search.emails.post(
        request_body={"emails": ["a@example.com"]}
    )
    a_id = json.loads(found.body)["result"]["a@example.com"]["contact"]["id"]

    removed = client.client.marketing.lists._(list_id).contacts.delete(
        query_params={"contact_ids": a_id}
    )

    assert removed.status_code == 202
    assert wait_job(client, json.loads(removed.body)["job_id"])["status"] == "completed"
    assert sg.list_members(list_id) == {"b@example.com"}
    assert {c["email"] for c in sg.contacts()} == {"a@example.com", "b@example.com"}
    listed = json.loads(client.client.marketing.lists._(list_id).get().body)
    assert listed["contact_count"] == 1
    assert sg.requests_to("DELETE")[0].query == {"contact_ids": a_id}
    # A Python list becomes repeated parameters, which SendGrid does not read as a list.
    with pytest.raises(http_exc.BadRequestsError):
        client.client.marketing.lists._(list_id).contacts.delete(
            query_params={"contact_ids": [a_id, "other"]}
        )


def test_lists_page_with_page_token(sg: SendGridServer, client: Any) -> None:
    for i in range(5):
        client.client.marketing.lists.post(request_body={"name": f"list {i}"})

    names: list[str] = []
    params: dict[str, Any] = {"page_size": 2}
    while True:
        page = json.loads(client.client.marketing.lists.get(query_params=params).body)
        names += [r["name"] for r in page["result"]]
        if "next" not in page["_metadata"]:
            break
        token = page["_metadata"]["next"].split("page_token=")[1]
        params = {"page_size": 2, "page_token": token}

    assert names == [f"list {i}" for i in range(5)]
    with pytest.raises(http_exc.BadRequestsError):
        client.client.marketing.lists.get(query_params={"page_size": 1001})


def test_field_definitions_listing_duplicates_and_reserved(sg: SendGridServer, client: Any) -> None:
    client.client.marketing.field_definitions.post(
        request_body={"name": "role", "field_type": "Text"}
    )
    with pytest.raises(http_exc.BadRequestsError):
        client.client.marketing.field_definitions.post(
            request_body={"name": "role", "field_type": "Number"}
        )
    with pytest.raises(http_exc.BadRequestsError):
        client.client.marketing.field_definitions.post(
            request_body={"name": "first_name", "field_type": "Text"}
        )
    with pytest.raises(http_exc.BadRequestsError):
        client.client.marketing.field_definitions.post(
            request_body={"name": "when", "field_type": "Boolean"}
        )

    listing = json.loads(client.client.marketing.field_definitions.get().body)

    assert [(f["name"], f["field_type"]) for f in listing["custom_fields"]] == [("role", "Text")]
    assert "email" in {f["name"] for f in listing["reserved_fields"]}


# ---------------------------------------------------------------------- suppressions


def test_suppression_lists_and_groups(sg: SendGridServer, client: Any) -> None:
    for i in range(3):
        sg.add_suppression("bounces", f"b{i}@example.com", created=1_700_000_000 + i)
    sg.add_suppression("spam_reports", "spam@example.com")

    first = json.loads(client.client.suppression.bounces.get(query_params={"limit": 2}).body)
    rest = json.loads(
        client.client.suppression.bounces.get(query_params={"limit": 2, "offset": 2}).body
    )
    assert [b["email"] for b in first + rest] == [
        "b2@example.com",
        "b1@example.com",
        "b0@example.com",
    ]
    assert {"created", "email", "reason", "status"} <= set(first[0])
    spam = json.loads(client.client.suppression.spam_reports.get().body)
    assert [s["email"] for s in spam] == ["spam@example.com"]
    with pytest.raises(http_exc.BadRequestsError):
        client.client.suppression.bounces.get(query_params={"limit": 501})

    group = json.loads(
        client.client.asm.groups.post(
            request_body={"name": "Product tips", "description": "Onboarding"}
        ).body
    )
    added = client.client.asm.groups._(group["id"]).suppressions.post(
        request_body={"recipient_emails": ["tips-off@example.com"]}
    )
    assert added.status_code == 201
    status = json.loads(client.client.asm.suppressions._("tips-off@example.com").get().body)
    assert status["suppressions"][0]["suppressed"] is True
    groups = json.loads(client.client.asm.groups.get().body)
    assert [(g["name"], g["unsubscribes"]) for g in groups] == [("Product tips", 1)]

    glob = client.client.asm.suppressions._("global").post(
        request_body={"recipient_emails": ["all-off@example.com"]}
    )
    assert glob.status_code == 201
    unsubscribes = json.loads(client.client.suppression.unsubscribes.get().body)
    assert [u["email"] for u in unsubscribes] == ["all-off@example.com"]

    body = mail_body("tips-off@example.com", "all-off@example.com", "ok@example.com")
    body["asm"] = {"group_id": group["id"]}
    client.client.mail.send.post(request_body=body)
    assert [m.dropped for m in sg.messages] == ["group_unsubscribes", "unsubscribes", None]


# ---------------------------------------------------------------------- SMTP


def make_message(to: str = "dev@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "onramp@example.com"
    msg["To"] = to
    msg["Subject"] = "Your first API call"
    msg.set_content("plain body")
    msg.add_alternative("<p>html body</p>", subtype="html")
    return msg


def test_smtp_plain_collects_envelope_and_parsed_message() -> None:
    with SmtpServer() as smtp:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as conn:
            conn.send_message(make_message(), to_addrs=["dev@example.com", "bcc@example.com"])

        (received,) = smtp.messages
        assert received.mail_from == "onramp@example.com"
        assert received.rcpt_tos == ["dev@example.com", "bcc@example.com"]
        assert received.subject == "Your first API call"
        assert received.body("plain").strip() == "plain body"
        assert received.body("html").strip() == "<p>html body</p>"
        assert received.tls is False and received.authenticated_as is None
        assert smtp.url == f"smtp://127.0.0.1:{smtp.port}"


def test_smtp_auth_required_and_checked() -> None:
    with SmtpServer(auth=("mailer", "s3cret")) as smtp:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as conn:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                conn.send_message(make_message())
            assert refused.value.smtp_code == 530
        with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as conn:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                conn.login("mailer", "wrong")
        with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as conn:
            conn.login("mailer", "s3cret")
            conn.send_message(make_message())

        assert [m.authenticated_as for m in smtp.messages] == ["mailer"]
        assert smtp.auth_failures >= 1
        assert smtp.url == f"smtp://mailer:s3cret@127.0.0.1:{smtp.port}"


def test_smtp_starttls_with_a_verified_self_signed_cert() -> None:
    with SmtpServer(auth=("mailer", "s3cret"), tls="starttls") as smtp:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as conn:
            conn.ehlo()
            assert conn.has_extn("starttls")
            assert not conn.has_extn("auth")  # no AUTH in clear text
        with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as conn:
            with pytest.raises(ssl.SSLCertVerificationError):
                # A verifying context (what onramp must use) rejects an untrusted certificate;
                # note smtplib's own default, starttls() without context, does not verify.
                conn.starttls(context=ssl.create_default_context())
        with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as conn:
            conn.starttls(context=smtp.client_ssl_context())
            conn.login("mailer", "s3cret")
            conn.send_message(make_message())

        (received,) = smtp.messages
        assert received.tls is True and received.authenticated_as == "mailer"
        assert smtp.url.endswith("?starttls=true")


def test_smtp_implicit_tls_and_injected_rejection() -> None:
    with SmtpServer(tls="ssl") as smtp:
        context = smtp.client_ssl_context()
        with smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=5, context=context) as conn:
            conn.send_message(make_message())
        smtp.reject_next(1, code=451)
        with smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=5, context=context) as conn:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                conn.send_message(make_message("later@example.com"))
        assert refused.value.recipients["later@example.com"][0] == 451

        assert [m.rcpt_tos for m in smtp.messages] == [["dev@example.com"]]
        assert smtp.messages[0].tls is True
        assert smtp.url.startswith("smtps://")
