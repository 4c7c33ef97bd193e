"""SendGrid v3 through the official `sendgrid` package, within the limits of docs/sendgrid.md.

- `sg.client.timeout` is always set (the library's default is no timeout at all).
- No `request_headers=` is ever passed: the library merges them into a dict shared by every later
  call.
- 429: wait until `X-RateLimit-Reset` (bounded); 503 and connection failures: exponential backoff
  (bounded). A 500/502/504 or a *read* timeout on mail send is not retried: the request reached
  SendGrid, which may have accepted it, and mail send has no idempotency key, so those rows become
  `sent_unconfirmed` (never sent twice) and carry `onramp_message_id` for the Event Webhook to
  confirm. Read timeouts and 5xx on idempotent calls (contacts upsert, lookups, deletes) are
  retried.
- Mail send: one personalization per recipient, <= 1,000 per request, each address once per
  request. The body of each email is rendered by onramp (Jinja2) and carried in the
  personalization's `substitutions` (`-onramp_html-` / `-onramp_text-` in the content), so one
  request carries up to 1,000 different emails; an email too large for the 10,000-byte
  substitutions limit goes alone with its body as content. A 400 on a batch is bisected until the
  rows SendGrid rejects are isolated; they fail with SendGrid's message, the rest are sent.
- Contacts: <= 30,000 contacts and <= 6 MB per upsert, then the import job is polled.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
from collections.abc import Callable, Iterable, Sequence
from http.client import HTTPException
from typing import Any, Protocol

from python_http_client import exceptions as http_exc
from sendgrid import SendGridAPIClient

from email_sync.feedback.asm import asm_group_id
from email_sync.hashing import hash_email, redact_addresses
from email_sync.providers.base import (
    AmbiguousSendError,
    Contact,
    ImportJob,
    ListOutcome,
    OutgoingEmail,
    Provider,
    ProviderError,
    RetryPolicy,
    SendOutcome,
)
from onramp.settings import Settings

log = logging.getLogger(__name__)
# python_http_client logs every request's headers (the Bearer key) and body (recipient addresses)
# at DEBUG; onramp's logs must never show either, whatever level the user picks.
logging.getLogger("python_http_client").setLevel(logging.INFO)

MAX_PERSONALIZATIONS = 1000
MAX_CONTACTS = 30_000
MAX_CONTACTS_BYTES = 6_000_000 - 2_000  # headroom for the envelope
MAX_SUBSTITUTION_BYTES = 10_000
SEARCH_BATCH = 100
DELETE_BATCH = 100
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "blocks", "spam_reports", "invalid_emails")
HTML_TAG = "-onramp_html-"
TEXT_TAG = "-onramp_text-"
# 5xx answers that can come after SendGrid accepted a mail send (a proxy or the backend failing
# once the request was taken): not retried, the rows become sent_unconfirmed. 503 and 429 mean
# the request was not taken, so they are retried.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})


def _error_message(exc: http_exc.HTTPError) -> str:
    """SendGrid's own message(s) from an error body, one line, addresses hashed: some quote the
    offending address, and these messages reach logs, the ledger and run summaries."""
    try:
        body = json.loads(exc.body.decode("utf-8")) if exc.body else {}
        messages = [e.get("message", "") for e in body.get("errors", []) if isinstance(e, dict)]
        text = "; ".join(m for m in messages if m)
    except (ValueError, AttributeError):
        text = ""
    return redact_addresses(f"{exc.status_code} {text or exc.reason}".strip())


class RequestTracker(Protocol):
    """What a provider calls around each request (email_sync.delivery.LedgerTracker)."""

    def claim(self, message_ids: Sequence[str]) -> None: ...
    def release(self, message_ids: Sequence[str]) -> None: ...
    def record(self, outcomes: list[SendOutcome]) -> None: ...


class SendGridProvider(Provider):
    """Sends through the SendGrid v3 API with the official client."""

    name = "sendgrid"
    batch_size = MAX_PERSONALIZATIONS

    def __init__(
        self,
        api_key: str,
        sender: str,
        host: str | None = None,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        sender_name: str | None = "onramp",
        job_poll_timeout_s: float = 10.0,
    ) -> None:
        super().__init__()
        if not api_key:
            raise ProviderError(
                "SENDGRID_API_KEY is not set (needed with ONRAMP_EMAIL_PROVIDER=sendgrid)"
            )
        self.sg = (
            SendGridAPIClient(api_key, host=host.rstrip("/"))
            if host
            else SendGridAPIClient(api_key)
        )
        self.sg.client.timeout = timeout_s
        self.timeout_s = timeout_s
        self.sender = sender
        self.sender_name = sender_name
        self.retry = retry or RetryPolicy()
        self.job_poll_timeout_s = job_poll_timeout_s
        self._list_ids: dict[str, str] = {}
        self._field_ids: dict[str, str] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, retry: RetryPolicy | None = None
    ) -> SendGridProvider:
        return cls(
            api_key=settings.sendgrid_api_key or "",
            sender=settings.email_from,
            host=settings.sendgrid_api_host,
            timeout_s=settings.http_timeout_s,
            retry=retry,
            job_poll_timeout_s=settings.import_wait_s,
        )

    def __repr__(self) -> str:  # never the key
        return f"SendGridProvider(host={self.sg.host!r})"

    # --- the one place HTTP happens ------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], Any], idempotent: bool = True) -> Any:
        """Run one API call with the retry rules; returns the library's Response."""
        policy = self.retry
        attempt = 0
        rate_waited = 0.0
        rate_hits = 0
        while True:
            start = time.perf_counter()
            try:
                self.calls += 1
                return fn()
            except http_exc.TooManyRequestsError as exc:
                rate_hits += 1
                wait = self._reset_wait(exc)
                if rate_hits > policy.max_rate_limit_hits or rate_waited + wait > (
                    policy.max_rate_limit_wait_s
                ):
                    raise ProviderError(
                        f"{what}: still rate limited after waiting {rate_waited:.0f}s",
                        status=429,
                    ) from exc
                log.info("%s: 429, waiting %.1fs for X-RateLimit-Reset", what, wait)
                rate_waited += wait
                policy.sleep(wait)
            except http_exc.HTTPError as exc:
                status = int(getattr(exc, "status_code", 0) or 0)
                if status in AMBIGUOUS_STATUSES and not idempotent:
                    # The request may have been accepted before the error: never resent.
                    raise AmbiguousSendError(
                        f"{what}: {_error_message(exc)} after the request was sent; not retried, "
                        "it may have been accepted",
                        status=status,
                    ) from exc
                if status < 500 or attempt >= policy.max_retries:
                    raise ProviderError(f"{what}: {_error_message(exc)}", status=status) from exc
                delay = policy.backoff(attempt)
                log.info("%s: %s, retry %d in %.1fs", what, status, attempt + 1, delay)
                attempt += 1
                policy.sleep(delay)
            except (TimeoutError, HTTPException, ConnectionError, urllib.error.URLError) as exc:
                # urllib wraps failures while connecting/sending in URLError; a timeout while
                # waiting for the answer surfaces bare: the server has the whole request.
                read_timeout = not isinstance(exc, urllib.error.URLError)
                if read_timeout and not idempotent:
                    raise AmbiguousSendError(
                        f"{what}: no answer within {self.timeout_s:g}s after the request was "
                        "sent; not retried, it may have been accepted",
                    ) from exc
                if attempt >= policy.max_retries:
                    raise ProviderError(
                        f"{what}: {type(exc).__name__} after {attempt + 1} tries"
                    ) from exc
                delay = policy.backoff(attempt)
                log.info("%s: %s, retry %d in %.1fs", what, type(exc).__name__, attempt + 1, delay)
                attempt += 1
                policy.sleep(delay)
            finally:
                self.wait_seconds += time.perf_counter() - start

    def _reset_wait(self, exc: http_exc.HTTPError) -> float:
        reset = None
        headers = getattr(exc, "headers", None)
        if headers is not None:
            reset = headers.get("X-RateLimit-Reset")
        try:
            wait = float(reset) - time.time() if reset is not None else 1.0
        except ValueError:
            wait = 1.0
        return min(max(wait, 0.2), 60.0)

    @staticmethod
    def _json(response: Any) -> Any:
        body = response.body
        if not body:
            return None
        return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)

    # --- mail send -----------------------------------------------------------------------------

    def _personalization(self, email: OutgoingEmail) -> dict[str, Any]:
        return {
            "to": [{"email": email.to}],
            "subject": email.subject,
            "custom_args": email.custom_args,
            "headers": dict(email.headers),
            "substitutions": {HTML_TAG: email.html, TEXT_TAG: email.text},
        }

    def _fits_substitutions(self, email: OutgoingEmail) -> bool:
        size = len(json.dumps({HTML_TAG: email.html, TEXT_TAG: email.text}).encode())
        size += len(json.dumps(email.custom_args).encode())
        return size <= MAX_SUBSTITUTION_BYTES - 200

    def _body(self, emails: list[OutgoingEmail], inline: bool) -> dict[str, Any]:
        first = emails[0]
        sender: dict[str, str] = {"email": self.sender}
        if self.sender_name:
            sender["name"] = self.sender_name
        if inline:  # a single large email: body as content, no substitutions
            p = self._personalization(first)
            del p["substitutions"]
            personalizations = [p]
            content = [
                {"type": "text/plain", "value": first.text},
                {"type": "text/html", "value": first.html},
            ]
        else:
            personalizations = [self._personalization(e) for e in emails]
            content = [
                {"type": "text/plain", "value": TEXT_TAG},
                {"type": "text/html", "value": HTML_TAG},
            ]
        categories = sorted({c for e in emails for c in e.categories})[:10]
        body = {
            "from": sender,
            "personalizations": personalizations,
            "content": content,
            "categories": categories,
        }
        if first.unsubscribe_scope:  # marketing: SendGrid's unsubscribe group for the scope
            body["asm"] = {"group_id": asm_group_id(self, first.unsubscribe_scope)}
        return body

    def send(
        self, emails: list[OutgoingEmail], tracker: RequestTracker | None = None
    ) -> list[SendOutcome]:
        """One request per chunk; with a tracker, each request's rows are claimed right before it
        and recorded right after it (see email_sync.delivery)."""
        outcomes: list[SendOutcome] = []
        batched: list[OutgoingEmail] = []
        for email in emails:
            if self._fits_substitutions(email):
                batched.append(email)
            else:
                outcomes.extend(self._send_batch([email], inline=True, tracker=tracker))
        # One unsubscribe group per request (asm is message-level): chunk per scope.
        for scope in sorted({e.unsubscribe_scope or "" for e in batched}):
            same = [e for e in batched if (e.unsubscribe_scope or "") == scope]
            for chunk in _unique_chunks(same, MAX_PERSONALIZATIONS):
                outcomes.extend(self._send_batch(chunk, inline=False, tracker=tracker))
        return outcomes

    def _send_batch(
        self, emails: list[OutgoingEmail], inline: bool, tracker: RequestTracker | None = None
    ) -> list[SendOutcome]:
        ids = [e.message_id for e in emails]
        if tracker is not None:
            tracker.claim(ids)
        body = self._body(emails, inline)
        try:
            response = self._call(
                f"mail send ({len(emails)})",
                lambda: self.sg.client.mail.send.post(request_body=body, timeout=self.timeout_s),
                idempotent=False,
            )
        except AmbiguousSendError as exc:
            outcomes = [SendOutcome(e.message_id, "sent_unconfirmed", str(exc)) for e in emails]
        except ProviderError as exc:
            if exc.status == 400 and len(emails) > 1:
                # Bisect: the good half goes out, the bad rows are isolated with their message.
                # SendGrid took none of this request: unclaim it, each half claims itself.
                if tracker is not None:
                    tracker.release(ids)
                mid = len(emails) // 2
                return self._send_batch(emails[:mid], inline, tracker) + self._send_batch(
                    emails[mid:], inline, tracker
                )
            if exc.status == 400:
                log.info("mail send rejected for %s: %s", hash_email(emails[0].to), exc)
            outcomes = [SendOutcome(e.message_id, "failed", str(exc)) for e in emails]
        else:
            headers = getattr(response, "headers", None)
            sg_id = headers.get("X-Message-Id") if headers is not None else None
            outcomes = [SendOutcome(e.message_id, "sent", None, sg_id) for e in emails]
        if tracker is not None:
            tracker.record(outcomes)
        return outcomes

    # --- suppressions --------------------------------------------------------------------------

    def fetch_suppressions(self) -> Iterable[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for kind in SUPPRESSION_KINDS:
            offset = 0
            while True:
                response = self._call(
                    f"suppression/{kind}",
                    lambda k=kind, o=offset: self.sg.client.suppression._(k).get(
                        query_params={"limit": 500, "offset": o}, timeout=self.timeout_s
                    ),
                )
                page = self._json(response) or []
                out.extend((item.get("email", ""), kind.rstrip("s")) for item in page)
                if len(page) < 500:
                    break
                offset += 500
        groups = self._json(
            self._call("asm/groups", lambda: self.sg.client.asm.groups.get(timeout=self.timeout_s))
        )
        for group in groups or []:
            gid = group.get("id")
            emails = self._json(
                self._call(
                    "asm/groups/suppressions",
                    lambda g=gid: self.sg.client.asm.groups._(g).suppressions.get(
                        timeout=self.timeout_s
                    ),
                )
            )
            out.extend((e, f"group unsubscribe {group.get('name', gid)}") for e in emails or [])
        return out

    # --- lists ---------------------------------------------------------------------------------

    def _list_id(self, name: str) -> str:
        if name in self._list_ids:
            return self._list_ids[name]
        token: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": 1000}
            if token:
                params["page_token"] = token
            page = self._json(
                self._call(
                    "marketing/lists",
                    lambda p=params: self.sg.client.marketing.lists.get(
                        query_params=p, timeout=self.timeout_s
                    ),
                )
            )
            for item in page.get("result", []):
                self._list_ids[item["name"]] = item["id"]
            nxt = (page.get("_metadata") or {}).get("next")
            if name in self._list_ids or not nxt:
                break
            token = _query_value(nxt, "page_token")
            if not token:
                break
        if name not in self._list_ids:
            created = self._json(
                self._call(
                    "create list",
                    lambda: self.sg.client.marketing.lists.post(
                        request_body={"name": name}, timeout=self.timeout_s
                    ),
                )
            )
            self._list_ids[name] = created["id"]
            log.info("created SendGrid list %r", name)
        return self._list_ids[name]

    def _field_map(self, field_types: dict[str, str]) -> dict[str, str]:
        """name -> field id, creating the missing custom field definitions."""
        if self._field_ids is None or not set(field_types) <= set(self._field_ids):
            listing = self._json(
                self._call(
                    "field_definitions",
                    lambda: self.sg.client.marketing.field_definitions.get(timeout=self.timeout_s),
                )
            )
            self._field_ids = {f["name"]: f["id"] for f in listing.get("custom_fields", [])}
        for name, field_type in field_types.items():
            if name not in self._field_ids:
                created = self._json(
                    self._call(
                        "create field",
                        lambda n=name, t=field_type: (
                            self.sg.client.marketing.field_definitions.post(
                                request_body={"name": n, "field_type": t}, timeout=self.timeout_s
                            )
                        ),
                    )
                )
                self._field_ids[name] = created["id"]
                log.info("created SendGrid custom field %r (%s)", name, field_type)
        return {name: self._field_ids[name] for name in field_types}

    def sync_list(
        self,
        list_name: str,
        field_types: dict[str, str],
        upserts: list[Contact],
        removals: list[str],
    ) -> ListOutcome:
        outcome = ListOutcome()
        list_id = self._list_id(list_name)
        if upserts:
            ids = self._field_map(field_types)
            jobs = []
            for chunk in _contact_chunks(upserts, ids):
                body = {"list_ids": [list_id], "contacts": chunk}
                try:
                    result = self._json(
                        self._call(
                            f"contacts upsert ({len(chunk)})",
                            lambda b=body: self.sg.client.marketing.contacts.put(
                                request_body=b, timeout=self.timeout_s
                            ),
                        )
                    )
                except ProviderError as exc:
                    for contact in chunk:
                        outcome.failed[contact["email"]] = str(exc)
                    continue
                jobs.append((result["job_id"], chunk))
            # One short wait for all the jobs of this call; a job still pending after it is
            # handed back for the caller to record and confirm on a later run.
            deadline = time.monotonic() + self.job_poll_timeout_s
            for job_id, chunk in jobs:
                job = self._wait_for_job(ImportJob(job_id, [c["email"] for c in chunk]), deadline)
                outcome.jobs.append(job)
                if job.status != "pending":
                    outcome.failed.update(job.failed)
                    outcome.upserted.update(e for e in job.emails if e not in job.failed)
        if removals:
            contact_ids = self._contact_ids(removals)
            found = list(contact_ids.items())
            for i in range(0, len(found), DELETE_BATCH):
                part = found[i : i + DELETE_BATCH]
                try:
                    result = self._json(
                        self._call(
                            f"remove list contacts ({len(part)})",
                            lambda p=part: self.sg.client.marketing.lists._(
                                list_id
                            ).contacts.delete(
                                query_params={"contact_ids": ",".join(cid for _, cid in p)},
                                timeout=self.timeout_s,
                            ),
                        )
                    )
                except ProviderError as exc:
                    for email, _ in part:
                        outcome.failed[email] = str(exc)
                    continue
                job_id = (result or {}).get("job_id")
                emails = [e for e, _ in part]
                if job_id:
                    deadline = time.monotonic() + self.job_poll_timeout_s
                    job = self._wait_for_job(ImportJob(job_id, emails), deadline)
                    if job.status == "pending":  # removal is idempotent: retried next run
                        job.failed = {e: "import job still pending" for e in emails}
                    outcome.failed.update(job.failed)
                    outcome.removed.update(e for e in emails if e not in job.failed)
                else:
                    outcome.removed.update(emails)
            # An address SendGrid does not know is not on the list: nothing to remove.
            outcome.removed.update(e for e in removals if e not in contact_ids)
        return outcome

    def check_import(self, job: ImportJob) -> ImportJob:
        """Poll once a contact import job an earlier run left pending."""
        return self._poll_job(job)

    def _wait_for_job(self, job: ImportJob, deadline: float) -> ImportJob:
        """Poll `job` until it finishes or `deadline` (monotonic) passes; polled at least once."""
        delay = 0.05
        while True:
            self._poll_job(job)
            remaining = deadline - time.monotonic()
            if job.status != "pending" or remaining <= 0:
                return job
            start = time.perf_counter()
            self.retry.sleep(min(delay, remaining))
            self.wait_seconds += time.perf_counter() - start
            delay = min(delay * 2, 2.0)

    def _poll_job(self, job: ImportJob) -> ImportJob:
        """One GET of the import job: sets its status and the addresses that failed."""
        body = self._json(
            self._call(
                "import job",
                lambda: self.sg.client.marketing.contacts.imports._(job.job_id).get(
                    timeout=self.timeout_s
                ),
            )
        )
        status = body.get("status")
        if status in ("completed", "errored"):
            job.status = status
            errored = int((body.get("results") or {}).get("errored_count") or 0)
            if errored:
                # errors_url lists the failing rows; we keep them pending for the next run
                # rather than guess, and say how many.
                bad = self._job_errors(body)
                job.failed = {e: bad[e] for e in job.emails if e in bad}
                if not bad:
                    job.failed = {e: f"import job {status}" for e in job.emails}
                job.reason = f"{errored} contact(s) errored"
        elif status == "failed":
            job.status = "failed"
            job.failed = {e: "import job failed" for e in job.emails}
            job.reason = "import job failed"
        else:
            job.status = "pending"
        return job

    def _job_errors(self, job: dict[str, Any]) -> dict[str, str]:
        url = (job.get("results") or {}).get("errors_url")
        if not url or "/v3/" not in url:
            return {}
        path = url.split("/v3/", 1)[1].split("?")[0].strip("/").split("/")
        client = self.sg.client
        for part in path:
            client = client._(part)
        try:
            body = self._json(
                self._call("import errors", lambda: client.get(timeout=self.timeout_s))
            )
        except ProviderError:
            return {}
        errors = body.get("errors", []) if isinstance(body, dict) else []
        return {e["email"]: e.get("message", "error") for e in errors if e.get("email")}

    def _contact_ids(self, emails: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(emails), SEARCH_BATCH):
            part = emails[i : i + SEARCH_BATCH]
            try:
                response = self._call(
                    f"search emails ({len(part)})",
                    lambda p=part: self.sg.client.marketing.contacts.search.emails.post(
                        request_body={"emails": p}, timeout=self.timeout_s
                    ),
                )
            except ProviderError as exc:
                if exc.status == 404:  # none of these addresses is a contact
                    continue
                raise
            result = (self._json(response) or {}).get("result", {})
            for email, entry in result.items():
                contact = entry.get("contact") if isinstance(entry, dict) else None
                if contact and contact.get("id"):
                    out[email.lower()] = contact["id"]
        return out


def _query_value(url: str, key: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(url).query).get(key)
    return values[0] if values else None


def _unique_chunks(emails: list[OutgoingEmail], size: int) -> list[list[OutgoingEmail]]:
    """Chunks of <= size in which every address appears once (SendGrid rejects duplicates)."""
    chunks: list[list[OutgoingEmail]] = []
    current: list[OutgoingEmail] = []
    seen: set[str] = set()
    later: list[OutgoingEmail] = []
    for email in emails:
        key = email.to.lower()
        if key in seen:
            later.append(email)
            continue
        current.append(email)
        seen.add(key)
        if len(current) == size:
            chunks.append(current)
            current, seen = [], set()
    if current:
        chunks.append(current)
    if later:
        chunks.extend(_unique_chunks(later, size))
    return chunks


def _contact_chunks(
    contacts: list[Contact], field_ids: dict[str, str]
) -> list[list[dict[str, Any]]]:
    """<= 30,000 contacts and <= 6 MB of JSON per upsert request. Sizes are measured on whole
    chunks (one C-speed json.dumps each) and a chunk over the limit is halved."""
    rows: list[dict[str, Any]] = []
    for contact in contacts:
        row: dict[str, Any] = {"email": contact.email}
        if contact.first_name:
            row["first_name"] = contact.first_name
        if contact.fields:
            row["custom_fields"] = {
                field_ids[name]: value
                for name, value in contact.fields.items()
                if value is not None
            }
        rows.append(row)
    chunks: list[list[dict[str, Any]]] = []
    pending = [rows[i : i + MAX_CONTACTS] for i in range(0, len(rows), MAX_CONTACTS)]
    while pending:
        chunk = pending.pop(0)
        if len(chunk) > 1 and len(json.dumps(chunk).encode()) > MAX_CONTACTS_BYTES:
            mid = len(chunk) // 2
            pending[:0] = [chunk[:mid], chunk[mid:]]
        else:
            chunks.append(chunk)
    return chunks
