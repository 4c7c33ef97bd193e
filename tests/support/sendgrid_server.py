"""A local SendGrid v3 server on 127.0.0.1 that keeps the contract of docs/sendgrid.md.

Why: onramp's tests and benchmarks must drive the *official* ``sendgrid`` client over real
HTTP, so status codes, bodies, limits, async import jobs, 429s with rate-limit headers and timeouts
behave like SendGrid's, without the network or an account. Stdlib only (``http.server``), one lock,
no per-contact work beyond what the contract checks, so benchmarks measure onramp, not this server.

Usage::

    from tests.support.sendgrid_server import SendGridServer

    with SendGridServer() as sg:           # ephemeral port; any non-empty Bearer key is accepted
        client = sg.client(timeout=5)      # SendGridAPIClient(sg.api_key, host=sg.url), timeout set
        os.environ.update(sg.env())        # or: SENDGRID_API_KEY / SENDGRID_API_HOST for Settings
        client.client.mail.send.post(request_body={...})  # 202, X-Message-Id header
        sg.messages                        # one SentMessage per personalization recipient
        sg.count("POST", "/v3/mail/send")  # requests received (fnmatch patterns allowed)
        sg.requests_to("PUT", "/v3/marketing/contacts")  # [RecordedRequest(method, path, query,
                                                         #   headers, json, status, ...)]

Pytest: ``from tests.support.sendgrid_server import sendgrid_server`` in a conftest gives a fresh
server per test (fixture name ``sendgrid_server``).

Faults (thread-safe, consumed in order; ``path``/``method`` filter which requests a rule hits; a
``path`` is an fnmatch pattern such as ``"/v3/mail/send"`` or ``"/v3/marketing/*"``):

* ``sg.fail_next(n=1, status=500, reset_in=1.0, path=None, method=None, process=False, body=None)``
  - the next n matching requests answer ``status``; a 429 has body
  ``{"errors":[{"field":null,"message":"too many requests"}]}``, ``X-RateLimit-Remaining: 0`` and
  ``X-RateLimit-Reset`` = now + reset_in (unix seconds, rounded up). ``process=True`` applies the
  request first (the mail *is* accepted and recorded) and then answers the failure.
* ``sg.hang_next(n, seconds, path=None, method=None)`` - sleep before answering, so a client with
  ``sg.client.timeout`` set times out. The request is still processed after the sleep (like a
  SendGrid that accepted the mail while the client gave up): ``sg.messages`` shows it.
* ``sg.disconnect_next(n, path=None, method=None, process=True)`` - close the connection without
  an answer (after applying the request unless ``process=False``): ``RemoteDisconnected``.
* ``sg.fail_jobs(n, status="failed")`` - the next n contact import jobs end ``failed``/``errored``.
* ``sg.reset()`` - drop recorded requests, messages, counters and fault rules (state such as
  contacts, lists, fields and suppressions is kept; ``sg.reset(state=True)`` clears it too).

Seeding and inspection from Python: ``sg.add_suppression(kind, email, reason=None)`` with kind in
unsubscribes|bounces|blocks|spam_reports|invalid_emails, ``sg.create_group(name)`` ->
group id, ``sg.add_group_suppression(group_id, email)``, ``sg.create_list(name)`` -> id,
``sg.create_field(name, field_type)`` -> id, ``sg.contacts()`` (dicts with ``list_ids`` and
``custom_fields`` keyed by field *name*), ``sg.list_members(list_id)`` -> set of emails,
``sg.complete_jobs()`` (finish pending import jobs now), ``sg.job_delay`` (seconds before an
import job completes, default 0.05), ``sg.wait_for_messages(n)``, ``sg.messages_to(email)``,
``sg.server_seconds(method, path)`` (time spent serving, for benchmark shares; the server runs in
the caller's process, so keep that in mind when reading profiles).

Event Webhook: ``sg.events("delivered"|"bounce"|"open"|..., messages=None, **fields)`` builds
events for accepted messages in SendGrid's shape (custom_args as top-level keys, sg_message_id
starting with the X-Message-Id), ``sg.delivery_events()`` gives processed+delivered (or dropped for
suppressed recipients), ``sg.sign_webhook(body)`` the signature headers and
``sg.webhook_public_key`` the key to verify them (``sendgrid.helpers.eventwebhook`` accepts it),
``sg.post_events(url, events)`` POSTs them signed to a receiver.

Contract kept (see docs/sendgrid.md): ``Authorization: Bearer <key>`` or 401; errors always
``{"errors":[{"message","field","help"}]}``; ``X-RateLimit-Limit/Remaining/Reset`` on every response
(informational unless ``enforce_rate_limit=True``). Mail send validates personalizations (1..1000),
from, recipients (<= 1000 in total, valid syntax, each address once per request), subject/content
unless template_id, content order, categories (<= 10, unique, <= 255 chars), custom_args and
substitutions (<= 10,000 bytes), send_at (<= 72 h ahead), asm (groups_to_display <= 25), batch_id
(from POST /v3/mail/batch), body < 30 MB (413). Sandbox mode answers 200 and records nothing. A
personalization's ``substitutions`` (string values) are applied to its subject and content in the
recorded ``SentMessage``, as SendGrid applies them before delivery.
Messages to suppressed addresses are accepted (202) and recorded with ``dropped`` set, as SendGrid
drops them after accepting. Contacts upserts (<= 30,000 contacts, <= 6 MB, one identifier each,
known custom field ids) answer 202 ``{job_id}`` and are applied when the job completes; a custom
field value of the wrong type errors that contact inside the job (``errored_count``,
``errors_url``). Contacts in answers carry ``custom_fields`` keyed by field name, as SendGrid's
do. A query parameter given twice (python-http-client's rendering of a list) is a 400: pass ids as
one comma-separated string, e.g. ``query_params={"contact_ids": ",".join(ids)}``. Size limits
are decimal (6,000,000 and 30,000,000 bytes), the strict reading of "6 MB" / "30 MB".

Endpoints: POST /v3/mail/send, POST /v3/mail/batch, GET /v3/mail/batch/{id};
GET|POST /v3/marketing/field_definitions, DELETE .../{id}; GET|POST /v3/marketing/lists,
GET|DELETE /v3/marketing/lists/{id}, DELETE /v3/marketing/lists/{id}/contacts?contact_ids=;
PUT|DELETE /v3/marketing/contacts, GET /v3/marketing/contacts/{id}, GET .../contacts/count,
GET /v3/marketing/contacts/imports/{id}, POST /v3/marketing/contacts/search/emails;
GET|POST /v3/asm/groups, GET /v3/asm/groups/{id}, GET|POST /v3/asm/groups/{id}/suppressions,
DELETE .../suppressions/{email}, GET /v3/asm/suppressions, GET /v3/asm/suppressions/{email},
POST /v3/asm/suppressions/global, GET|DELETE /v3/asm/suppressions/global/{email};
GET /v3/suppression/{kind}?limit=&offset=&start_time=&end_time=, GET|DELETE .../{kind}/{email}.
Anything else is a 404 (405 for a known path with another method).
"""

from __future__ import annotations

import base64
import fnmatch
import gc
import json
import logging
import math
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

MAIL_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
MAX_MAIL_BYTES = 30_000_000
MAX_CONTACTS_BYTES = 6_000_000
MAX_CONTACTS = 30_000
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SEND_AT_AHEAD_S = 72 * 3600
MAX_FIELDS = 500
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "blocks", "spam_reports", "invalid_emails")
# Kinds that make SendGrid drop a message after accepting it (blocks are not dropped).
DROPPING_KINDS = ("bounces", "unsubscribes", "spam_reports", "invalid_emails")
EMAIL_RE = re.compile(
    r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
RESERVED_FIELDS = [
    ("_rf0_T", "first_name", "Text"),
    ("_rf1_T", "last_name", "Text"),
    ("_rf2_T", "email", "Text"),
    ("_rf3_T", "alternate_emails", "Text"),
    ("_rf4_T", "address_line_1", "Text"),
    ("_rf5_T", "address_line_2", "Text"),
    ("_rf6_T", "city", "Text"),
    ("_rf7_T", "state_province_region", "Text"),
    ("_rf8_T", "postal_code", "Text"),
    ("_rf9_T", "country", "Text"),
    ("_rf10_T", "phone_number", "Text"),
    ("_rf11_T", "whatsapp", "Text"),
    ("_rf12_T", "line", "Text"),
    ("_rf13_T", "facebook", "Text"),
    ("_rf14_T", "unique_name", "Text"),
    ("_rf15_T", "phone_number_id", "Text"),
    ("_rf16_T", "external_id", "Text"),
    ("_rf17_T", "anonymous_id", "Text"),
    ("_rf18_D", "created_at", "Date"),
    ("_rf19_D", "updated_at", "Date"),
    ("_rf20_T", "contact_id", "Text"),
]
RESERVED_NAMES = {name for _, name, _ in RESERVED_FIELDS}
CONTACT_ATTRS = (
    "first_name",
    "last_name",
    "alternate_emails",
    "address_line_1",
    "address_line_2",
    "city",
    "state_province_region",
    "postal_code",
    "country",
    "unique_name",
)
RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}
IDENTIFIERS = ("email", "phone_number_id", "external_id", "anonymous_id")


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_email(value: Any) -> bool:
    """SendGrid-like syntax check: one @, no spaces, a dotted domain."""
    return isinstance(value, str) and len(value) <= 320 and EMAIL_RE.match(value) is not None


class ApiError(Exception):
    """An error answer in SendGrid's shape ``{"errors":[{"message","field","help"}]}``."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        field: str | None = None,
        help: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message or (errors[0]["message"] if errors else ""))
        self.status = status
        self.errors = errors or [{"message": message, "field": field, "help": help}]

    def body(self) -> dict[str, Any]:
        return {"errors": self.errors}


def _err(message: str, field: str | None = None, help: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": help}


@dataclass
class RecordedRequest:
    """One request the server received, for assertions (``json`` parses ``body`` on first use)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    at: float = field(default_factory=time.time)
    seconds: float = 0.0  # time the server spent on it (hang excluded), for benchmark shares
    _json: Any = field(default=None, repr=False)

    @property
    def body_bytes(self) -> int:
        return len(self.body)

    @property
    def json(self) -> Any:
        """The parsed body (a fresh parse, so the server's own use of it never shows here)."""
        if self._json is None and self.body:
            try:
                self._json = json.loads(self.body)
            except ValueError:
                self._json = None
        return self._json


@dataclass
class SentMessage:
    """One accepted recipient of one personalization (what SendGrid would deliver)."""

    message_id: str
    sg_message_id: str
    recipient: str
    recipient_type: str  # to | cc | bcc
    personalization_index: int
    to: list[str]
    from_email: str
    from_name: str | None
    subject: str | None
    text: str | None
    html: str | None
    custom_args: dict[str, Any]
    categories: list[str]
    template_id: str | None
    dynamic_template_data: dict[str, Any] | None
    substitutions: dict[str, Any] | None
    headers: dict[str, Any]
    asm_group_id: int | None
    send_at: int | None
    batch_id: str | None
    dropped: str | None  # suppression kind that made SendGrid drop it, or None
    received_at: float


@dataclass
class _Rule:
    remaining: int
    path: str | None
    method: str | None
    status: int = 500
    reset_in: float = 1.0
    seconds: float = 0.0
    process: bool = False
    body: Any = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


@dataclass
class _Job:
    id: str
    job_type: str
    ready_at: float
    payload: Any
    status: str = "pending"
    results: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    forced_status: str | None = None
    started_at: str = field(default_factory=_now_iso)
    finished_at: str | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "onramp-sendgrid-local/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("sendgrid-local: " + format, *args)

    def _go(self) -> None:
        self.server.sg._dispatch(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _go


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


class SendGridServer:
    """Local SendGrid v3 API: ``with SendGridServer() as sg`` or ``start()`` / ``stop()``."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        job_delay: float = 0.05,
        rate_limit: int = 600,
        enforce_rate_limit: bool = False,
        record_bodies: bool = True,
    ) -> None:
        # api_key None: any non-empty Bearer token is accepted; sg.api_key is still a usable key.
        self._require_key = api_key
        self.api_key = api_key or "SG.local-test-key"
        self.job_delay = job_delay
        self.rate_limit = rate_limit
        self.enforce_rate_limit = enforce_rate_limit
        self.record_bodies = record_bodies
        self._lock = threading.RLock()
        self._signing_key: Any = None
        self._base_url = ""  # kept after stop() so late job settlement can still build URLs
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()
        self._reset_traffic()
        self._reset_state()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("SendGridServer is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("SendGridServer is not running")
        return int(self._httpd.server_address[1])

    def start(self) -> SendGridServer:
        self._stop.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.sg = self  # type: ignore[attr-defined]
        self._base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sendgrid-local",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wake hanging handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SendGridServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, timeout: float | None = 10.0) -> Any:
        """The official client pointed at this server, with a timeout (the library has none)."""
        import sendgrid

        sg = sendgrid.SendGridAPIClient(self.api_key, host=self.url)
        sg.client.timeout = timeout
        return sg

    def env(self) -> dict[str, str]:
        """Environment for onramp's Settings: provider sendgrid, key and host of this server."""
        return {
            "ONRAMP_EMAIL_PROVIDER": "sendgrid",
            "SENDGRID_API_KEY": self.api_key,
            "SENDGRID_API_HOST": self.url,
        }

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        reset_in: float = 1.0,
        path: str | None = None,
        method: str | None = None,
        process: bool = False,
        body: Any = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` (see module doc)."""
        with self._lock:
            self._fails.append(
                _Rule(n, path, method, status=status, reset_in=reset_in, process=process, body=body)
            )

    def hang_next(
        self, n: int = 1, seconds: float = 5.0, path: str | None = None, method: str | None = None
    ) -> None:
        """Sleep ``seconds`` before answering the next ``n`` matching requests."""
        with self._lock:
            self._hangs.append(_Rule(n, path, method, seconds=seconds))

    def disconnect_next(
        self,
        n: int = 1,
        path: str | None = None,
        method: str | None = None,
        process: bool = True,
    ) -> None:
        """Close the connection instead of answering the next ``n`` matching requests.

        ``process=True`` (default) applies the request first, like a SendGrid that accepted the
        mail before the connection broke; the client sees ``http.client.RemoteDisconnected`` or a
        connection reset. ``RecordedRequest.status`` is 0 for these.
        """
        with self._lock:
            self._disconnects.append(_Rule(n, path, method, process=process))

    def fail_jobs(self, n: int = 1, status: str = "failed") -> None:
        """Make the next ``n`` contact import jobs end with ``status`` (failed | errored)."""
        with self._lock:
            self._job_faults.extend([status] * n)

    def reset(self, state: bool = False) -> None:
        """Forget recorded traffic and fault rules; with ``state=True`` also all account data."""
        with self._lock:
            self._reset_traffic()
            if state:
                self._reset_state()

    # ------------------------------------------------------------------ inspection / seeding

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[SentMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def counts(self) -> Counter[str]:
        """Requests received, keyed ``"METHOD /path"`` (query string excluded)."""
        with self._lock:
            return Counter(self._counts)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received matching ``method`` and the fnmatch ``path`` pattern."""
        with self._lock:
            total = 0
            for key, n in self._counts.items():
                m, p = key.split(" ", 1)
                if method is not None and m != method.upper():
                    continue
                if path is not None and not fnmatch.fnmatchcase(p, path):
                    continue
                total += n
            return total

    def requests_to(
        self, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self._requests
                if (method is None or r.method == method.upper())
                and (path is None or fnmatch.fnmatchcase(r.path, path))
            ]

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[SentMessage]:
        """Wait until at least ``n`` messages were accepted (e.g. after a hung request)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages
            if len(messages) >= n or time.monotonic() >= deadline:
                return messages
            time.sleep(0.01)

    def server_seconds(self, method: str | None = None, path: str | None = None) -> float:
        """Seconds the server spent handling matching requests (hangs excluded).

        For benchmarks: the client's wall time minus this is roughly its own share.
        """
        return sum(r.seconds for r in self.requests_to(method, path))

    # ------------------------------------------------------------------ Event Webhook

    @property
    def webhook_public_key(self) -> str:
        """Base64 DER public key, as SendGrid shows it for the Signed Event Webhook."""
        from cryptography.hazmat.primitives import serialization

        der = (
            self._webhook_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return base64.b64encode(der).decode()

    def sign_webhook(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Signature headers for a webhook body: ECDSA P-256/SHA-256 over timestamp + raw body."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._webhook_key().sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        }

    def events(
        self,
        event: str = "delivered",
        messages: list[SentMessage] | None = None,
        **fields: Any,
    ) -> list[dict[str, Any]]:
        """Event Webhook events of one type for accepted messages (default: all of them).

        Shape as SendGrid posts them: email, timestamp, event, smtp-id, sg_event_id,
        sg_message_id, category, the message's custom_args as top-level keys, plus the
        event's own fields (reason, status, type, url, ...); ``fields`` override or add keys
        (``sg_message_id=None`` drops it, as on an asynchronous bounce).
        """
        now = int(time.time())
        out = []
        for m in self.messages if messages is None else messages:
            ev: dict[str, Any] = {
                **m.custom_args,
                "email": m.recipient,
                "timestamp": now,
                "event": event,
                "smtp-id": f"<{m.message_id}@local.sendgrid.test>",
                "sg_event_id": secrets.token_urlsafe(16),
                "sg_message_id": m.sg_message_id,
            }
            if m.categories:
                ev["category"] = m.categories if len(m.categories) > 1 else m.categories[0]
            ev.update(_EVENT_DEFAULTS.get(event, {}))
            if event in ("group_unsubscribe", "group_resubscribe") and m.asm_group_id is not None:
                ev["asm_group_id"] = m.asm_group_id
            ev.update(fields)
            out.append({k: v for k, v in ev.items() if v is not None})
        return out

    def delivery_events(self, messages: list[SentMessage] | None = None) -> list[dict[str, Any]]:
        """What SendGrid reports after accepting: processed + delivered, or dropped."""
        out: list[dict[str, Any]] = []
        for m in self.messages if messages is None else messages:
            if m.dropped:
                out += self.events("dropped", [m], reason=_DROP_REASONS.get(m.dropped, "Dropped"))
            else:
                out += self.events("processed", [m]) + self.events("delivered", [m])
        return out

    def post_events(
        self, url: str, events: list[dict[str, Any]], signed: bool = True, timeout: float = 10.0
    ) -> int:
        """POST events to a webhook receiver the way SendGrid does; returns the HTTP status."""
        import urllib.error
        import urllib.request

        body = json.dumps(events).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "SendGrid Event API"}
        if signed:
            headers.update(self.sign_webhook(body))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    def _webhook_key(self) -> Any:
        with self._lock:
            if self._signing_key is None:
                from cryptography.hazmat.primitives.asymmetric import ec

                self._signing_key = ec.generate_private_key(ec.SECP256R1())
            return self._signing_key

    def messages_to(self, email: str) -> list[SentMessage]:
        key = email.lower()
        with self._lock:
            return [m for m in self._messages if m.recipient.lower() == key]

    def add_suppression(
        self,
        kind: str,
        email: str,
        reason: str | None = None,
        created: int | None = None,
        status: str | None = None,
    ) -> None:
        if kind not in SUPPRESSION_KINDS:
            raise ValueError(f"kind must be one of {SUPPRESSION_KINDS}")
        with self._lock:
            self._suppress(kind, email, reason=reason, created=created, status=status)

    def create_group(self, name: str, description: str = "", is_default: bool = False) -> int:
        with self._lock:
            return self._new_group(name, description, is_default)["id"]

    def add_group_suppression(self, group_id: int, email: str) -> None:
        with self._lock:
            if group_id not in self._groups:
                raise KeyError(group_id)
            self._group_suppressions.setdefault(group_id, {})[email.lower()] = int(time.time())

    def create_list(self, name: str) -> str:
        with self._lock:
            return self._new_list(name)["id"]

    def create_field(self, name: str, field_type: str = "Text") -> str:
        with self._lock:
            return self._new_field(name, field_type)["id"]

    def complete_jobs(self) -> None:
        """Finish every pending import job now."""
        with self._lock:
            self._settle(math.inf)

    def contacts(self) -> list[dict[str, Any]]:
        with self._lock:
            self._settle(time.monotonic())
            return [self._contact_view(c) for c in self._contacts.values()]

    def contact_by_email(self, email: str) -> dict[str, Any] | None:
        with self._lock:
            self._settle(time.monotonic())
            cid = self._by_ident["email"].get(email.lower())
            return None if cid is None else self._contact_view(self._contacts[cid])

    def list_members(self, list_id: str) -> set[str]:
        """Emails (or other identifier) of the contacts on a list, after completed jobs."""
        with self._lock:
            self._settle(time.monotonic())
            out = set()
            for cid in self._members.get(list_id, ()):
                c = self._contacts[cid]
                out.add(c.get("email") or c.get("external_id") or cid)
            return out

    def list_id(self, name: str) -> str | None:
        with self._lock:
            for lst in self._lists.values():
                if lst["name"] == name:
                    return lst["id"]
            return None

    def field_id(self, name: str) -> str | None:
        with self._lock:
            return self._field_by_name.get(name)

    # ------------------------------------------------------------------ internals: state

    def _reset_traffic(self) -> None:
        self._requests: list[RecordedRequest] = []
        self._messages: list[SentMessage] = []
        self._counts: Counter[str] = Counter()
        self._fails: list[_Rule] = []
        self._hangs: list[_Rule] = []
        self._disconnects: list[_Rule] = []
        self._job_faults: list[str] = []
        self._window_start = time.time()
        self._window_used = 0

    def _reset_state(self) -> None:
        self._fields: dict[str, dict[str, Any]] = {}
        self._field_by_name: dict[str, str] = {}
        self._field_seq = 0
        self._lists: dict[str, dict[str, Any]] = {}
        self._members: dict[str, set[str]] = {}
        self._contacts: dict[str, dict[str, Any]] = {}
        self._contact_seq = 0
        # uuid-shaped contact ids from a counter: uuid4() per contact is too slow for 100k upserts
        self._id_base = str(uuid.uuid4())[:24]
        self._by_ident: dict[str, dict[str, str]] = {k: {} for k in IDENTIFIERS}
        self._jobs: dict[str, _Job] = {}
        self._pending: list[_Job] = []
        self._batches: set[str] = set()
        self._groups: dict[int, dict[str, Any]] = {}
        self._group_seq = 10000
        self._group_suppressions: dict[int, dict[str, int]] = {}
        self._suppressions: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in SUPPRESSION_KINDS
        }

    def _suppress(
        self,
        kind: str,
        email: str,
        reason: str | None = None,
        created: int | None = None,
        status: str | None = None,
    ) -> None:
        item: dict[str, Any] = {"created": created or int(time.time()), "email": email.lower()}
        if kind in ("bounces", "blocks"):
            item["reason"] = reason or (
                "550 5.1.1 User unknown" if kind == "bounces" else "blocked"
            )
            item["status"] = status or ("5.1.1" if kind == "bounces" else "5.0.0")
        elif kind == "invalid_emails":
            item["reason"] = reason or "Mail domain mentioned in email address is unknown"
        elif kind == "spam_reports":
            item["ip"] = "127.0.0.1"
        self._suppressions[kind][email.lower()] = item

    def _new_group(self, name: str, description: str, is_default: bool) -> dict[str, Any]:
        self._group_seq += 1
        group = {
            "id": self._group_seq,
            "name": name,
            "description": description,
            "is_default": bool(is_default),
        }
        self._groups[group["id"]] = group
        return group

    def _new_list(self, name: str) -> dict[str, Any]:
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ApiError(400, "name is required and must be at most 100 characters", "name")
        if any(lst["name"] == name for lst in self._lists.values()):
            raise ApiError(400, "list name already exists", "name")
        lst = {"id": str(uuid.uuid4()), "name": name, "created_at": _now_iso()}
        self._lists[lst["id"]] = lst
        self._members[lst["id"]] = set()
        return lst

    def _new_field(self, name: Any, field_type: Any) -> dict[str, Any]:
        if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
            raise ApiError(
                400,
                "custom field names must start with a letter or underscore and contain only "
                "letters, numbers and underscores (at most 100 characters)",
                "name",
            )
        if field_type not in ("Text", "Number", "Date"):
            raise ApiError(400, "field_type must be one of Text, Number, Date", "field_type")
        if (
            name.lower() in {n.lower() for n in self._field_by_name}
            or name.lower() in RESERVED_NAMES
        ):
            raise ApiError(400, "custom field name already exists", "name")
        if len(self._fields) >= MAX_FIELDS:
            raise ApiError(400, f"maximum of {MAX_FIELDS} custom fields reached", "name")
        self._field_seq += 1
        fid = f"e{self._field_seq}_{field_type[0]}"
        fdef = {"id": fid, "name": name, "field_type": field_type}
        self._fields[fid] = fdef
        self._field_by_name[name] = fid
        return fdef

    def _contact_view(self, c: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in c.items() if k != "custom_fields"}
        cid = c["id"]
        view["list_ids"] = [lid for lid, m in self._members.items() if cid in m]
        view["segment_ids"] = []
        view["custom_fields"] = {
            self._fields[fid]["name"]: v
            for fid, v in c["custom_fields"].items()
            if fid in self._fields
        }
        return view

    # ------------------------------------------------------------------ internals: jobs

    def _new_job(self, job_type: str, payload: Any) -> _Job:
        job = _Job(
            id=str(uuid.uuid4()),
            job_type=job_type,
            ready_at=time.monotonic() + self.job_delay,
            payload=payload,
        )
        if job_type == "upsert":
            job.results = {
                "requested_count": len(payload[1]),
                "created_count": 0,
                "updated_count": 0,
                "deleted_count": 0,
                "errored_count": 0,
            }
            if self._job_faults:
                job.forced_status = self._job_faults.pop(0)
        self._jobs[job.id] = job
        self._pending.append(job)
        return job

    def _settle(self, now: float) -> None:
        while self._pending and self._pending[0].ready_at <= now:
            job = self._pending.pop(0)
            if job.job_type == "upsert":
                # Allocating 30k records would trigger many full collections of a big heap.
                gc_was_enabled = gc.isenabled()
                gc.disable()
                try:
                    self._apply_upsert(job)
                finally:
                    if gc_was_enabled:
                        gc.enable()
            elif job.job_type == "list_contacts_removal":
                list_id, ids = job.payload
                members = self._members.get(list_id, set())
                removed = 0
                for cid in ids:
                    if cid in members:
                        members.discard(cid)
                        removed += 1
                job.results = {
                    "requested_count": len(ids),
                    "deleted_count": removed,
                    "errored_count": 0,
                }
                job.status = "completed"
            elif job.job_type == "delete":
                ids = job.payload
                for cid in ids:
                    self._drop_contact(cid)
                job.results = {
                    "requested_count": len(ids),
                    "deleted_count": len(ids),
                    "errored_count": 0,
                }
                job.status = "completed"
            job.finished_at = _now_iso()
            job.payload = None

    def _drop_contact(self, cid: str) -> None:
        c = self._contacts.pop(cid, None)
        if c is None:
            return
        for ident in IDENTIFIERS:
            if c.get(ident):
                self._by_ident[ident].pop(c[ident], None)
        for m in self._members.values():
            m.discard(cid)

    def _apply_upsert(self, job: _Job) -> None:
        list_ids, contacts = job.payload
        requested = len(contacts)
        if job.forced_status == "failed":
            job.status = "failed"
            job.results = {
                "requested_count": requested,
                "created_count": 0,
                "updated_count": 0,
                "deleted_count": 0,
                "errored_count": requested,
                "errors_url": f"{self._base_url}/v3/marketing/contacts/imports/{job.id}/errors",
            }
            job.errors = [{"index": i, "message": "import failed"} for i in range(requested)]
            return
        created = updated = errored = 0
        fields = self._fields
        by_ident = self._by_ident
        by_email = by_ident["email"]
        store = self._contacts
        members = [self._members[lid] for lid in list_ids if lid in self._members]
        others = IDENTIFIERS[1:]
        now = _now_iso()
        for i, raw in enumerate(contacts):
            cf = raw.get("custom_fields")
            if cf:
                bad = None
                for fid, value in cf.items():
                    ftype = fields[fid]["field_type"] if fid in fields else None
                    if ftype == "Number":
                        ok = value is None or (
                            isinstance(value, int | float) and not isinstance(value, bool)
                        )
                    elif ftype is None:
                        ok = False
                    else:
                        ok = value is None or isinstance(value, str)
                    if not ok:
                        bad = f"custom field {fid} expects a {ftype} value"
                        break
                if bad:
                    errored += 1
                    job.errors.append({"index": i, "email": raw.get("email"), "message": bad})
                    continue
            email = raw.get("email")
            cid = None
            if email:
                email = email.lower()
                cid = by_email.get(email)
            else:
                for ident in others:
                    v = raw.get(ident)
                    if v:
                        cid = by_ident[ident].get(v)
                        if cid is not None:
                            break
            if cid is None:  # new contact: the parsed request dict becomes the record (no copy)
                self._contact_seq += 1
                cid = f"{self._id_base}{self._contact_seq:012x}"
                c = raw
                c["id"] = cid
                c["created_at"] = c["updated_at"] = now
                if not cf:
                    c["custom_fields"] = {}
                if email:
                    c["email"] = email
                    by_email[email] = cid
                for ident in others:
                    v = raw.get(ident)
                    if v:
                        by_ident[ident][v] = cid
                store[cid] = c
                created += 1
            else:
                c = store[cid]
                updated += 1
                for k, v in raw.items():
                    if k == "custom_fields":
                        if v:
                            c["custom_fields"].update(v)
                    elif k in IDENTIFIERS:
                        if v:
                            v = v.lower() if k == "email" else v
                            old = c.get(k)
                            if old and old != v:
                                by_ident[k].pop(old, None)
                            c[k] = v
                            by_ident[k][v] = cid
                    else:
                        c[k] = v
                c["updated_at"] = now
            for m in members:
                m.add(cid)
        job.results = {
            "requested_count": requested,
            "created_count": created,
            "updated_count": updated,
            "deleted_count": 0,
            "errored_count": errored,
        }
        if errored:
            job.results["errors_url"] = (
                f"{self._base_url}/v3/marketing/contacts/imports/{job.id}/errors"
            )
        if job.forced_status == "errored" or errored:
            job.status = "errored"
        else:
            job.status = "completed"

    # ------------------------------------------------------------------ internals: HTTP

    def _take(self, rules: list[_Rule], method: str, path: str) -> _Rule | None:
        for rule in rules:
            if rule.remaining > 0 and rule.matches(method, path):
                rule.remaining -= 1
                if rule.remaining == 0:
                    rules.remove(rule)
                return rule
        return None

    def _rate_headers(
        self, now: float, exhausted: bool = False, reset_in: float | None = None
    ) -> list[tuple[str, str]]:
        if now - self._window_start >= 60:
            self._window_start = now
            self._window_used = 0
        remaining = 0 if exhausted else max(0, self.rate_limit - self._window_used)
        reset = (
            math.ceil(now + reset_in)
            if reset_in is not None
            else math.ceil(self._window_start + 60)
        )
        return [
            ("X-RateLimit-Limit", str(self.rate_limit)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset)),
        ]

    def _dispatch(self, h: _Handler) -> None:
        t0 = time.perf_counter()
        method = h.command
        split = urlsplit(h.path)
        path = unquote(split.path)
        if len(path) > 1:
            path = path.rstrip("/")
        parsed_query = parse_qs(split.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in parsed_query.items()}
        repeated = sorted(k for k, v in parsed_query.items() if len(v) > 1)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        rec = RecordedRequest(
            method, path, query, dict(h.headers.items()), raw if self.record_bodies else b""
        )
        with self._lock:
            self._requests.append(rec)
            self._counts[f"{method} {path}"] += 1
            hang = self._take(self._hangs, method, path)
            fail = self._take(self._fails, method, path)
            disconnect = self._take(self._disconnects, method, path)
        if hang is not None:
            self._stop.wait(hang.seconds)
        status: int
        payload: Any
        extra: list[tuple[str, str]] = []
        reset_in: float | None = None
        exhausted = False
        if fail is not None and not fail.process:
            status, payload = fail.status, None
        elif disconnect is not None and not disconnect.process:
            status, payload = 0, None
        else:
            try:
                if repeated:
                    # python-http-client turns a list into repeated parameters; SendGrid wants
                    # comma-separated ids, so surface the mistake instead of using one value.
                    raise ApiError(
                        400,
                        f"query parameter {repeated[0]} given more than once; "
                        "use one comma-separated value",
                        repeated[0],
                    )
                status, payload, extra = self._route(method, path, query, raw, h, rec)
            except ApiError as e:
                status, payload = e.status, e.body()
            except Exception as e:  # a bug here must show as a 500, not a hung client
                log.exception("sendgrid-local: internal error")
                status, payload = 500, {"errors": [_err(f"internal error: {e}")]}
        if fail is not None:
            status = fail.status
            extra = []
            if fail.body is not None:
                payload = fail.body
            elif status == 429:
                payload = {"errors": [{"field": None, "message": "too many requests"}]}
            else:
                payload = {"errors": [_err(_REASONS.get(status, "error"))]}
            if status == 429:
                exhausted, reset_in = True, fail.reset_in
        with self._lock:
            now = time.time()
            self._window_used += 1
            if (
                self.enforce_rate_limit
                and fail is None
                and self._window_used > self.rate_limit
                and now - self._window_start < 60
            ):
                status = 429
                payload = {"errors": [{"field": None, "message": "too many requests"}]}
                exhausted = True
            headers = self._rate_headers(now, exhausted, reset_in)
        if disconnect is not None:  # close without answering: the client sees a reset
            rec.status = 0
            rec.seconds = time.perf_counter() - t0 - (hang.seconds if hang is not None else 0.0)
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        rec.status = status
        data = b"" if payload is None else json.dumps(payload).encode()
        rec.seconds = time.perf_counter() - t0 - (hang.seconds if hang is not None else 0.0)
        try:
            h.send_response(status)
            if data:
                h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in headers + extra:
                h.send_header(k, v)
            h.end_headers()
            if data:
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            h.close_connection = True

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        raw: bytes,
        h: _Handler,
        rec: RecordedRequest,
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        auth = h.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(401, errors=[{"field": None, "message": "authorization required"}])
        if self._require_key is not None and auth[7:].strip() != self._require_key:
            raise ApiError(
                401,
                errors=[
                    {
                        "field": None,
                        "message": (
                            "The provided authorization grant is invalid, expired, or revoked"
                        ),
                    }
                ],
            )
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise ApiError(400, "Bad Request", None, None) from e
        allowed = False
        for m, regex, fn in self._routes:
            match = regex.match(path)
            if match is None:
                continue
            allowed = True
            if m != method:
                continue
            with self._lock:
                self._settle(time.monotonic())
                result = fn(body=body, query=query, raw=raw, **match.groupdict())
            if len(result) == 2:
                return result[0], result[1], []
            return result
        if allowed:
            raise ApiError(405, "method not allowed")
        raise ApiError(404, "resource not found")

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Any]]:
        table = [
            ("POST", r"/v3/mail/send", self._mail_send),
            ("POST", r"/v3/mail/batch", self._batch_create),
            ("GET", r"/v3/mail/batch/(?P<batch_id>[^/]+)", self._batch_get),
            ("GET", r"/v3/marketing/field_definitions", self._fields_get),
            ("POST", r"/v3/marketing/field_definitions", self._fields_post),
            ("DELETE", r"/v3/marketing/field_definitions/(?P<fid>[^/]+)", self._fields_delete),
            ("GET", r"/v3/marketing/lists", self._lists_get),
            ("POST", r"/v3/marketing/lists", self._lists_post),
            ("GET", r"/v3/marketing/lists/(?P<list_id>[^/]+)", self._list_get),
            ("DELETE", r"/v3/marketing/lists/(?P<list_id>[^/]+)", self._list_delete),
            ("DELETE", r"/v3/marketing/lists/(?P<list_id>[^/]+)/contacts", self._list_remove),
            ("PUT", r"/v3/marketing/contacts", self._contacts_put),
            ("DELETE", r"/v3/marketing/contacts", self._contacts_delete),
            ("GET", r"/v3/marketing/contacts/count", self._contacts_count),
            ("GET", r"/v3/marketing/contacts/imports/(?P<job_id>[^/]+)", self._job_get),
            ("GET", r"/v3/marketing/contacts/imports/(?P<job_id>[^/]+)/errors", self._job_errors),
            ("POST", r"/v3/marketing/contacts/search/emails", self._contacts_search_emails),
            ("GET", r"/v3/marketing/contacts/(?P<cid>[^/]+)", self._contact_get),
            ("GET", r"/v3/asm/groups", self._groups_get),
            ("POST", r"/v3/asm/groups", self._groups_post),
            ("GET", r"/v3/asm/groups/(?P<gid>\d+)", self._group_get),
            ("GET", r"/v3/asm/groups/(?P<gid>\d+)/suppressions", self._group_supp_get),
            ("POST", r"/v3/asm/groups/(?P<gid>\d+)/suppressions", self._group_supp_post),
            (
                "DELETE",
                r"/v3/asm/groups/(?P<gid>\d+)/suppressions/(?P<email>[^/]+)",
                self._group_supp_delete,
            ),
            ("GET", r"/v3/asm/suppressions", self._asm_supp_all),
            ("POST", r"/v3/asm/suppressions/global", self._global_post),
            ("GET", r"/v3/asm/suppressions/global/(?P<email>[^/]+)", self._global_get),
            ("DELETE", r"/v3/asm/suppressions/global/(?P<email>[^/]+)", self._global_delete),
            ("GET", r"/v3/asm/suppressions/(?P<email>[^/]+)", self._asm_supp_email),
            ("GET", r"/v3/suppression/(?P<kind>[a-z_]+)", self._supp_list),
            ("GET", r"/v3/suppression/(?P<kind>[a-z_]+)/(?P<email>[^/]+)", self._supp_get),
            ("DELETE", r"/v3/suppression/(?P<kind>[a-z_]+)/(?P<email>[^/]+)", self._supp_delete),
        ]
        return [(m, re.compile(p + r"\Z"), fn) for m, p, fn in table]

    # ------------------------------------------------------------------ mail

    def _batch_create(self, body: Any, **_: Any) -> tuple[int, Any]:
        batch_id = secrets.token_urlsafe(24)
        self._batches.add(batch_id)
        return 201, {"batch_id": batch_id}

    def _batch_get(self, batch_id: str, **_: Any) -> tuple[int, Any]:
        if batch_id not in self._batches:
            raise ApiError(400, "invalid batch id", "batch_id")
        return 200, {"batch_id": batch_id}

    def _mail_send(self, body: Any, raw: bytes, **_: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        if len(raw) >= MAX_MAIL_BYTES:
            raise ApiError(
                413, "The request body is too large: a message must be smaller than 30 MB."
            )
        errors = _validate_mail(body, self._batches)
        if errors:
            raise ApiError(400, errors=errors[:100])
        sandbox = ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable")
        if sandbox:
            return 200, None, []
        message_id = secrets.token_urlsafe(16)[:22]
        self._record_mail(body, message_id)
        return 202, None, [("X-Message-Id", message_id)]

    def _record_mail(self, body: dict[str, Any], message_id: str) -> None:
        frm = body["from"]
        content = body.get("content") or []
        text = next((c.get("value") for c in content if c.get("type") == "text/plain"), None)
        html = next((c.get("value") for c in content if c.get("type") == "text/html"), None)
        msg_args = body.get("custom_args") or {}
        categories = list(body.get("categories") or [])
        asm = body.get("asm") or {}
        group_id = asm.get("group_id")
        group_supp = self._group_suppressions.get(group_id, {}) if group_id is not None else {}
        supp = self._suppressions
        now = time.time()
        seq = 0
        for i, p in enumerate(body["personalizations"]):
            to = [r["email"] for r in p.get("to") or []]
            args = {**msg_args, **p["custom_args"]} if p.get("custom_args") else msg_args
            subject = p.get("subject") or body.get("subject")
            p_text, p_html = text, html
            subs = p.get("substitutions")
            if subs:  # SendGrid applies a personalization's substitutions to subject and content
                for key, value in subs.items():
                    if subject:
                        subject = subject.replace(key, value)
                    if p_text:
                        p_text = p_text.replace(key, value)
                    if p_html:
                        p_html = p_html.replace(key, value)
            headers = {**(body.get("headers") or {}), **(p.get("headers") or {})}
            for kind in ("to", "cc", "bcc"):
                for r in p.get(kind) or ():
                    email = r["email"]
                    key = email.lower()
                    dropped = None
                    for sk in DROPPING_KINDS:
                        if key in supp[sk]:
                            dropped = sk
                            break
                    if dropped is None and key in group_supp:
                        dropped = "group_unsubscribes"
                    self._messages.append(
                        SentMessage(
                            message_id=message_id,
                            sg_message_id=f"{message_id}.filterdrecv-local-{seq}",
                            recipient=email,
                            recipient_type=kind,
                            personalization_index=i,
                            to=to,
                            from_email=frm["email"],
                            from_name=frm.get("name"),
                            subject=subject,
                            text=p_text,
                            html=p_html,
                            custom_args=args,
                            categories=categories,
                            template_id=body.get("template_id"),
                            dynamic_template_data=p.get("dynamic_template_data"),
                            substitutions=p.get("substitutions"),
                            headers=headers,
                            asm_group_id=group_id,
                            send_at=p.get("send_at", body.get("send_at")),
                            batch_id=body.get("batch_id"),
                            dropped=dropped,
                            received_at=now,
                        )
                    )
                    seq += 1

    # ------------------------------------------------------------------ marketing: fields

    def _field_view(self, f: dict[str, Any]) -> dict[str, Any]:
        return {
            **f,
            "_metadata": {"self": f"{self.url}/v3/marketing/field_definitions/{f['id']}"},
        }

    def _fields_get(self, **_: Any) -> tuple[int, Any]:
        return 200, {
            "custom_fields": [self._field_view(f) for f in self._fields.values()],
            "reserved_fields": [
                {
                    "id": fid,
                    "name": name,
                    "field_type": ftype,
                    "read_only": name in ("created_at", "updated_at", "contact_id"),
                }
                for fid, name, ftype in RESERVED_FIELDS
            ],
            "_metadata": {"self": f"{self.url}/v3/marketing/field_definitions"},
        }

    def _fields_post(self, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "name and field_type are required", "name")
        return 200, self._field_view(self._new_field(body.get("name"), body.get("field_type")))

    def _fields_delete(self, fid: str, **_: Any) -> tuple[int, Any]:
        f = self._fields.pop(fid, None)
        if f is None:
            raise ApiError(404, "custom field not found", "custom_field_id")
        self._field_by_name.pop(f["name"], None)
        return 204, None

    # ------------------------------------------------------------------ marketing: lists

    def _list_view(self, lst: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": lst["id"],
            "name": lst["name"],
            "contact_count": len(self._members[lst["id"]]),
            "_metadata": {"self": f"{self.url}/v3/marketing/lists/{lst['id']}"},
        }

    def _lists_post(self, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "name is required", "name")
        return 201, self._list_view(self._new_list(body.get("name")))

    def _lists_get(self, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        try:
            size = int(query.get("page_size", "100"))
        except ValueError as e:
            raise ApiError(400, "page_size must be an integer", "page_size") from e
        if not 1 <= size <= 1000:
            raise ApiError(400, "page_size must be between 1 and 1000", "page_size")
        token = query.get("page_token") or "0"
        try:
            start = int(token)
        except ValueError as e:
            raise ApiError(400, "invalid page_token", "page_token") from e
        ordered = list(self._lists.values())
        page = ordered[start : start + size]
        meta: dict[str, Any] = {
            "self": f"{self.url}/v3/marketing/lists?page_size={size}&page_token={token}",
            "count": len(ordered),
        }
        if start + size < len(ordered):
            meta["next"] = (
                f"{self.url}/v3/marketing/lists?page_size={size}&page_token={start + size}"
            )
        if start > 0:
            meta["prev"] = (
                f"{self.url}/v3/marketing/lists?page_size={size}&page_token={max(0, start - size)}"
            )
        return 200, {"result": [self._list_view(x) for x in page], "_metadata": meta}

    def _get_list(self, list_id: str) -> dict[str, Any]:
        lst = self._lists.get(list_id)
        if lst is None:
            raise ApiError(404, "list not found", "id")
        return lst

    def _list_get(self, list_id: str, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        view = self._list_view(self._get_list(list_id))
        if query.get("contact_sample") in ("true", "True", "1"):
            view["contact_sample"] = [
                self._contact_view(self._contacts[c]) for c in list(self._members[list_id])[:50]
            ]
        return 200, view

    def _list_delete(self, list_id: str, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._get_list(list_id)
        members = self._members.pop(list_id)
        del self._lists[list_id]
        if query.get("delete_contacts") == "true":
            job = self._new_job("delete", list(members))
            return 202, {"job_id": job.id}
        return 204, None

    def _list_remove(self, list_id: str, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        self._get_list(list_id)
        ids = [x for x in (query.get("contact_ids") or "").split(",") if x]
        if not ids:
            raise ApiError(400, "contact_ids is required", "contact_ids")
        job = self._new_job("list_contacts_removal", (list_id, ids))
        return 202, {"job_id": job.id}

    # ------------------------------------------------------------------ marketing: contacts

    def _contacts_put(self, body: Any, raw: bytes, **_: Any) -> tuple[int, Any]:
        if len(raw) > MAX_CONTACTS_BYTES:
            raise ApiError(413, "request body is too large: the limit is 6 MB", "contacts")
        if not isinstance(body, dict):
            raise ApiError(400, "contacts is required", "contacts")
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            raise ApiError(400, "contacts must contain between 1 and 30000 contacts", "contacts")
        if len(contacts) > MAX_CONTACTS:
            raise ApiError(400, "contacts must contain between 1 and 30000 contacts", "contacts")
        list_ids = body.get("list_ids") or []
        if not isinstance(list_ids, list):
            raise ApiError(400, "list_ids must be an array of list ids", "list_ids")
        errors = []
        for n, lid in enumerate(list_ids):
            if lid not in self._lists:
                errors.append(_err(f"list id {lid} does not exist", f"list_ids[{n}]"))
        fields = self._fields
        for i, c in enumerate(contacts):
            if len(errors) >= 100:
                break
            if not isinstance(c, dict):
                errors.append(_err("contact must be an object", f"contacts[{i}]"))
                continue
            email = c.get("email")
            if email is not None:
                if not valid_email(email):
                    errors.append(_err("email address is invalid", f"contacts[{i}].email"))
                    continue
            elif not (c.get("phone_number_id") or c.get("external_id") or c.get("anonymous_id")):
                errors.append(
                    _err(
                        "contact must have one of email, phone_number_id, external_id, "
                        "anonymous_id",
                        f"contacts[{i}]",
                    )
                )
                continue
            cf = c.get("custom_fields")
            if cf:
                if not isinstance(cf, dict):
                    errors.append(
                        _err("custom_fields must be an object", f"contacts[{i}].custom_fields")
                    )
                    continue
                for fid in cf:
                    if fid not in fields:
                        errors.append(
                            _err(
                                f"custom field ID {fid} does not exist",
                                f"contacts[{i}].custom_fields.{fid}",
                            )
                        )
        if errors:
            raise ApiError(400, errors=errors)
        job = self._new_job("upsert", (list(list_ids), contacts))
        return 202, {"job_id": job.id}

    def _contacts_delete(self, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        if query.get("delete_all_contacts") == "true":
            ids = list(self._contacts)
        else:
            ids = [x for x in (query.get("ids") or "").split(",") if x]
            if not ids:
                raise ApiError(400, "ids or delete_all_contacts is required", "ids")
        job = self._new_job("delete", ids)
        return 202, {"job_id": job.id}

    def _contacts_count(self, **_: Any) -> tuple[int, Any]:
        return 200, {"contact_count": len(self._contacts), "billable_count": len(self._contacts)}

    def _job_view(self, job: _Job) -> dict[str, Any]:
        return {
            "id": job.id,
            "status": job.status,
            "job_type": job.job_type,
            "results": dict(job.results),
            "started_at": job.started_at,
            "finished_at": job.finished_at,
        }

    def _job_get(self, job_id: str, **_: Any) -> tuple[int, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job not found", "id")
        return 200, self._job_view(job)

    def _job_errors(self, job_id: str, **_: Any) -> tuple[int, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job not found", "id")
        return 200, {"errors": job.errors}

    def _contacts_search_emails(self, body: Any, **_: Any) -> tuple[int, Any]:
        emails = body.get("emails") if isinstance(body, dict) else None
        if not isinstance(emails, list) or not emails:
            raise ApiError(400, "emails is required", "emails")
        if len(emails) > 100:
            raise ApiError(400, "emails must contain at most 100 addresses", "emails")
        result: dict[str, Any] = {}
        found = 0
        for email in emails:
            cid = self._by_ident["email"].get(str(email).lower())
            if cid is None:
                result[email] = {"error": "contact not found"}
            else:
                result[email] = {"contact": self._contact_view(self._contacts[cid])}
                found += 1
        if not found:
            raise ApiError(404, "no contacts found", "emails")
        return 200, {"result": result}

    def _contact_get(self, cid: str, **_: Any) -> tuple[int, Any]:
        c = self._contacts.get(cid)
        if c is None:
            raise ApiError(404, "contact not found", "id")
        return 200, self._contact_view(c)

    # ------------------------------------------------------------------ suppressions

    def _group_view(self, g: dict[str, Any]) -> dict[str, Any]:
        return {**g, "unsubscribes": len(self._group_suppressions.get(g["id"], {}))}

    def _groups_get(self, **_: Any) -> tuple[int, Any]:
        return 200, [self._group_view(g) for g in self._groups.values()]

    def _groups_post(self, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise ApiError(400, "name is required", "name")
        if len(body["name"]) > 30:
            raise ApiError(400, "name must be at most 30 characters", "name")
        if len(body.get("description") or "") > 100:
            raise ApiError(400, "description must be at most 100 characters", "description")
        if any(g["name"] == body["name"] for g in self._groups.values()):
            raise ApiError(400, "group name already exists", "name")
        return 201, self._new_group(
            body["name"], body.get("description") or "", body.get("is_default", False)
        )

    def _get_group(self, gid: str) -> dict[str, Any]:
        g = self._groups.get(int(gid))
        if g is None:
            raise ApiError(404, "group not found", "group_id")
        return g

    def _group_get(self, gid: str, **_: Any) -> tuple[int, Any]:
        return 200, self._group_view(self._get_group(gid))

    def _group_supp_get(self, gid: str, **_: Any) -> tuple[int, Any]:
        g = self._get_group(gid)
        return 200, sorted(self._group_suppressions.get(g["id"], {}))

    def _recipient_emails(self, body: Any) -> list[str]:
        emails = body.get("recipient_emails") if isinstance(body, dict) else None
        if not isinstance(emails, list) or not emails:
            raise ApiError(400, "recipient_emails is required", "recipient_emails")
        for n, e in enumerate(emails):
            if not valid_email(e):
                raise ApiError(400, "email address is invalid", f"recipient_emails[{n}]")
        return emails

    def _group_supp_post(self, gid: str, body: Any, **_: Any) -> tuple[int, Any]:
        g = self._get_group(gid)
        emails = self._recipient_emails(body)
        bucket = self._group_suppressions.setdefault(g["id"], {})
        for e in emails:
            bucket.setdefault(e.lower(), int(time.time()))
        return 201, {"recipient_emails": emails}

    def _group_supp_delete(self, gid: str, email: str, **_: Any) -> tuple[int, Any]:
        g = self._get_group(gid)
        self._group_suppressions.get(g["id"], {}).pop(email.lower(), None)
        return 204, None

    def _asm_supp_all(self, **_: Any) -> tuple[int, Any]:
        out = []
        for gid, bucket in self._group_suppressions.items():
            for email, created in bucket.items():
                out.append(
                    {
                        "email": email,
                        "group_id": gid,
                        "group_name": self._groups[gid]["name"],
                        "created_at": created,
                    }
                )
        return 200, out

    def _asm_supp_email(self, email: str, **_: Any) -> tuple[int, Any]:
        key = email.lower()
        return 200, {
            "suppressions": [
                {
                    "id": g["id"],
                    "name": g["name"],
                    "description": g["description"],
                    "is_default": g["is_default"],
                    "suppressed": key in self._group_suppressions.get(g["id"], {}),
                }
                for g in self._groups.values()
            ]
        }

    def _global_post(self, body: Any, **_: Any) -> tuple[int, Any]:
        emails = self._recipient_emails(body)
        for e in emails:
            if e.lower() not in self._suppressions["unsubscribes"]:
                self._suppress("unsubscribes", e)
        return 201, {"recipient_emails": emails}

    def _global_get(self, email: str, **_: Any) -> tuple[int, Any]:
        if email.lower() in self._suppressions["unsubscribes"]:
            return 200, {"recipient_email": email}
        return 200, {}

    def _global_delete(self, email: str, **_: Any) -> tuple[int, Any]:
        self._suppressions["unsubscribes"].pop(email.lower(), None)
        return 204, None

    def _kind(self, kind: str) -> dict[str, dict[str, Any]]:
        if kind not in SUPPRESSION_KINDS:
            raise ApiError(404, "resource not found")
        return self._suppressions[kind]

    def _supp_list(self, kind: str, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        bucket = self._kind(kind)
        try:
            limit = int(query.get("limit", "500"))
            offset = int(query.get("offset", "0"))
            start_time = int(query["start_time"]) if query.get("start_time") else None
            end_time = int(query["end_time"]) if query.get("end_time") else None
        except ValueError as e:
            raise ApiError(400, "limit, offset, start_time and end_time must be integers") from e
        if not 1 <= limit <= 500:
            raise ApiError(400, "limit must be between 1 and 500", "limit")
        if offset < 0:
            raise ApiError(400, "offset must not be negative", "offset")
        items = [
            i
            for i in bucket.values()
            if (start_time is None or i["created"] >= start_time)
            and (end_time is None or i["created"] <= end_time)
        ]
        items.sort(key=lambda i: i["created"], reverse=True)
        return 200, items[offset : offset + limit]

    def _supp_get(self, kind: str, email: str, **_: Any) -> tuple[int, Any]:
        item = self._kind(kind).get(email.lower())
        return 200, [item] if item else []

    def _supp_delete(self, kind: str, email: str, **_: Any) -> tuple[int, Any]:
        self._kind(kind).pop(email.lower(), None)
        return 204, None


_EVENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "processed": {"pool": {"name": "shared", "id": 1}},
    "delivered": {"response": "250 2.0.0 OK", "ip": "127.0.0.1", "tls": 1},
    "deferred": {"response": "451 4.7.1 Try again later", "attempt": "1", "ip": "127.0.0.1"},
    "bounce": {
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "status": "5.1.1",
        "type": "bounce",
        "bounce_classification": "Invalid Address",
        "ip": "127.0.0.1",
    },
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "open": {"useragent": "Mozilla/5.0", "ip": "127.0.0.1", "sg_machine_open": False},
    "click": {
        "url": "https://example.com/docs",
        "url_offset": {"index": 0, "type": "html"},
        "useragent": "Mozilla/5.0",
        "ip": "127.0.0.1",
    },
    "spamreport": {},
    "unsubscribe": {},
    "group_unsubscribe": {
        "useragent": "Mozilla/5.0",
        "ip": "127.0.0.1",
        "url": "https://example.com/unsubscribe",
    },
    "group_resubscribe": {
        "useragent": "Mozilla/5.0",
        "ip": "127.0.0.1",
        "url": "https://example.com/unsubscribe",
    },
}
_DROP_REASONS = {
    "bounces": "Bounced Address",
    "unsubscribes": "Unsubscribed Address",
    "spam_reports": "Spam Reporting Address",
    "invalid_emails": "Invalid",
    "group_unsubscribes": "Unsubscribed Address",
}

_REASONS = {
    400: "bad request",
    401: "authorization required",
    403: "access forbidden",
    404: "resource not found",
    413: "payload too large",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def _json_size(value: Any) -> int:
    """Compact-JSON byte size; flat string maps (the common case) without encoding them."""
    if isinstance(value, dict):
        size = 2
        for k, v in value.items():
            if not (isinstance(k, str) and isinstance(v, str)):
                break
            size += 6 + (len(k) if k.isascii() else len(k.encode()))
            size += len(v) if v.isascii() else len(v.encode())
        else:
            return size - 1 if value else 2
    return len(json.dumps(value, separators=(",", ":")).encode())


def _validate_mail(body: Any, batches: set[str]) -> list[dict[str, Any]]:
    """SendGrid's mail/send checks, in its error shape; returns every problem found."""
    if not isinstance(body, dict):
        return [_err("Bad Request")]
    errors: list[dict[str, Any]] = []

    def err(message: str, field: str | None, anchor: str) -> None:
        errors.append(_err(message, field, f"{MAIL_HELP}#{anchor}"))

    template_id = body.get("template_id")
    if template_id is not None and not isinstance(template_id, str):
        err("The template_id must be a string.", "template_id", "message.template_id")
        template_id = None
    frm = body.get("from")
    if not isinstance(frm, dict) or not frm.get("email"):
        err(
            "The from object must be provided for every email send. It is an object that requires "
            'the email parameter, but may also contain a name parameter.  e.g. {"email" : '
            '"example@example.com"}  or {"email" : "example@example.com", "name" : "Example '
            'Recipient"}.',
            "from.email",
            "message.from",
        )
    elif not valid_email(frm["email"]):
        err("The from email does not contain a valid address.", "from.email", "message.from")
    reply_to = body.get("reply_to")
    if isinstance(reply_to, dict) and not valid_email(reply_to.get("email")):
        err(
            "The reply_to email does not contain a valid address.",
            "reply_to.email",
            "message.reply_to",
        )

    msg_subject = body.get("subject")
    msg_args = body.get("custom_args")
    if msg_args is not None and not isinstance(msg_args, dict):
        err("The custom_args parameter must be an object.", "custom_args", "message.custom_args")
        msg_args = None
    msg_args_size = _json_size(msg_args) if msg_args else 0
    if msg_args_size > MAX_CUSTOM_ARGS_BYTES:
        err(
            "The custom_args parameter is limited to 10,000 bytes.",
            "custom_args",
            "message.custom_args",
        )
    now = time.time()

    def check_send_at(value: Any, field_name: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            err("The send_at parameter must be a unix timestamp.", field_name, "message.send_at")
        elif value > now + MAX_SEND_AT_AHEAD_S:
            err(
                "The send_at parameter can't be more than 72 hours in the future.",
                field_name,
                "message.send_at",
            )

    if "send_at" in body:
        check_send_at(body["send_at"], "send_at")

    def check_headers(value: Any, field_name: str) -> None:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            err("Headers must be an object of strings.", field_name, "message.headers")
            return
        for k in value:
            if k.lower() in RESERVED_HEADERS:
                err(f"The header {k} is reserved and cannot be set.", field_name, "message.headers")

    if "headers" in body:
        check_headers(body["headers"], "headers")

    pers = body.get("personalizations")
    if not isinstance(pers, list) or not pers:
        err(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
            "-Personalizations-Errors",
        )
        pers = []
    elif len(pers) > MAX_PERSONALIZATIONS:
        err(
            "The personalizations field has too many personalizations: at most 1000 are allowed.",
            "personalizations",
            "-Personalizations-Errors",
        )
        pers = []
    seen: dict[str, str] = {}
    total = 0
    missing_subject = False
    for i, p in enumerate(pers):
        if not isinstance(p, dict):
            err(
                "Each personalization must be an object.",
                f"personalizations.{i}",
                "-Personalizations-Errors",
            )
            continue
        to = p.get("to")
        if not isinstance(to, list) or not to:
            err(
                "The to array is required for all personalization objects, and must have at least "
                "one email object with a valid email address.",
                f"personalizations.{i}.to",
                "message.personalizations.to",
            )
        for kind in ("to", "cc", "bcc"):
            lst = p.get(kind)
            if lst is None:
                continue
            if not isinstance(lst, list):
                err(
                    f"The {kind} parameter must be an array.",
                    f"personalizations.{i}.{kind}",
                    f"message.personalizations.{kind}",
                )
                continue
            for j, r in enumerate(lst):
                total += 1
                email = r.get("email") if isinstance(r, dict) else None
                where = f"personalizations.{i}.{kind}.{j}.email"
                if not valid_email(email):
                    err(
                        "Does not contain a valid address.",
                        where,
                        f"message.personalizations.{kind}",
                    )
                    continue
                key = email.lower()  # type: ignore[union-attr]
                if key in seen:
                    err(
                        "Each email address in the personalization block should be unique between "
                        f"to, cc, and bcc. We found the first duplicate instance of [{email}] in "
                        f"the personalizations.{i}.{kind} field.",
                        where,
                        "message.recipient.errors",
                    )
                else:
                    seen[key] = where
        if not p.get("subject") and not msg_subject:
            missing_subject = True
        p_args = p.get("custom_args")
        if p_args is not None:
            if not isinstance(p_args, dict):
                err(
                    "The custom_args parameter must be an object.",
                    f"personalizations.{i}.custom_args",
                    "message.personalizations.custom_args",
                )
            elif msg_args_size + _json_size(p_args) > MAX_CUSTOM_ARGS_BYTES:
                err(
                    "The custom_args parameter is limited to 10,000 bytes.",
                    f"personalizations.{i}.custom_args",
                    "message.personalizations.custom_args",
                )
        subs = p.get("substitutions")
        if subs is not None and (
            not isinstance(subs, dict)
            or not all(isinstance(v, str) for v in subs.values())
            or _json_size(subs) > MAX_CUSTOM_ARGS_BYTES
        ):
            err(
                "The substitutions parameter must be an object of strings limited to 10,000 bytes.",
                f"personalizations.{i}.substitutions",
                "message.personalizations.substitutions",
            )
        if "dynamic_template_data" in p and not (template_id or "").startswith("d-"):
            err(
                "dynamic_template_data can only be used with a dynamic template "
                "(template_id d-...).",
                f"personalizations.{i}.dynamic_template_data",
                "message.personalizations.dynamic_template_data",
            )
        if "send_at" in p:
            check_send_at(p["send_at"], f"personalizations.{i}.send_at")
        if "headers" in p:
            check_headers(p["headers"], f"personalizations.{i}.headers")
    if total > MAX_RECIPIENTS:
        err(
            "The total number of recipients (to, cc and bcc over all personalizations) must be at "
            "most 1000.",
            "personalizations",
            "-Personalizations-Errors",
        )
    if missing_subject and not template_id:
        err(
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined or if every personalization has a subject defined.",
            "subject",
            "message.subject",
        )
    content = body.get("content")
    if content is None or content == []:
        if not template_id:
            err(
                "Unless a valid template_id is provided, the content parameter is required. There "
                "must be at least one defined content block. We typically suggest both text/plain "
                "and text/html blocks are included, but only one block is required.",
                "content",
                "message.content",
            )
    elif not isinstance(content, list):
        err("The content parameter must be an array.", "content", "message.content")
    else:
        types = []
        for n, c in enumerate(content):
            if not isinstance(c, dict) or not isinstance(c.get("type"), str) or not c["type"]:
                err(
                    "The content type must be a string at least one character in length.",
                    f"content.{n}.type",
                    "message.content.type",
                )
                continue
            if not isinstance(c.get("value"), str) or not c["value"]:
                err(
                    "The content value must be a string at least one character in length.",
                    f"content.{n}.value",
                    "message.content.value",
                )
            types.append(c["type"])
        if "text/plain" in types and types.index("text/plain") != 0:
            err(
                "If present, text/plain and text/html may only be provided in the following order: "
                "text/plain, text/html.",
                "content.0.type",
                "message.content.type",
            )
    categories = body.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            err(
                "The categories parameter must be an array of strings.",
                "categories",
                "message.categories",
            )
        elif len(categories) > 10:
            err(
                "Too many categories. A maximum of 10 categories is allowed.",
                "categories",
                "message.categories",
            )
        elif len(set(categories)) != len(categories):
            err("The categories must be unique.", "categories", "message.categories")
        else:
            for n, c in enumerate(categories):
                if len(c) > 255:
                    err(
                        "A category cannot be more than 255 characters.",
                        f"categories.{n}",
                        "message.categories",
                    )
    asm = body.get("asm")
    if asm is not None:
        if not isinstance(asm, dict) or not isinstance(asm.get("group_id"), int):
            err("The asm group_id must be an integer.", "asm.group_id", "message.asm.group_id")
        else:
            gtd = asm.get("groups_to_display")
            if gtd is not None and (not isinstance(gtd, list) or len(gtd) > 25):
                err(
                    "The groups_to_display parameter must be an array of at most 25 group ids.",
                    "asm.groups_to_display",
                    "message.asm.groups_to_display",
                )
    batch_id = body.get("batch_id")
    if batch_id is not None and batch_id not in batches:
        err(
            "The batch_id is not valid: create it with POST /v3/mail/batch.",
            "batch_id",
            "message.batch_id",
        )
    return errors


try:  # the fixture is optional: bench/ imports this module without pytest
    import pytest

    @pytest.fixture
    def sendgrid_server() -> Iterator[SendGridServer]:
        """A fresh local SendGrid server per test."""
        with SendGridServer() as sg:
            yield sg

except ImportError:  # pragma: no cover
    pass
