"""Plain SMTP through smtplib: `ONRAMP_SMTP_URL` = smtp://user:pass@host:587 or
smtps://user:pass@host:465. One connection per batch; each email is its own SMTP transaction.

Credentials never travel in plain text: with a user in an smtp:// URL, STARTTLS is on unless the
URL says `?starttls=false`, and then onramp refuses to log in at all (a server that offers no
STARTTLS fails the connection, it is not used in the clear). Without credentials (a local relay)
STARTTLS is used only when asked for (`?starttls=true`).

A 4xx reply or a dropped connection *before* DATA is accepted is retried with backoff on a fresh
connection; a 5xx reply fails that email with the server's message. If the connection breaks after
the DATA was sent but before the server's reply, the server may have queued the message, so it is
reported `sent_unconfirmed` rather than sent twice.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.policy import SMTP as SMTP_POLICY
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from email_sync.hashing import hash_email, redact_addresses
from email_sync.providers.base import (
    OutgoingEmail,
    Provider,
    ProviderError,
    RetryPolicy,
    SendOutcome,
)
from email_sync.providers.mime import build_mime
from onramp.settings import Settings

if TYPE_CHECKING:  # the protocol only; importing sendgrid here would load its client
    from email_sync.providers.sendgrid import RequestTracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to reach the SMTP server, from ONRAMP_SMTP_URL."""

    host: str
    port: int
    ssl: bool
    starttls: bool
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # never the password
        return f"SmtpTarget({self.host}:{self.port}, ssl={self.ssl}, starttls={self.starttls})"


TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no")


def parse_smtp_url(url: str) -> SmtpTarget:
    """Host, port, TLS mode and login of an smtp:// or smtps:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ProviderError("ONRAMP_SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ProviderError("ONRAMP_SMTP_URL has no host")
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    use_ssl = parts.scheme == "smtps"
    username = unquote(parts.username) if parts.username else None
    asked = query.get("starttls")
    if asked is not None and asked not in TRUE + FALSE:
        raise ProviderError(f"ONRAMP_SMTP_URL: starttls must be true or false, got {asked!r}")
    # With credentials STARTTLS is the default; without, only when asked for.
    starttls = asked in TRUE if asked is not None else bool(username)
    if username and not use_ssl and not starttls:
        raise ProviderError(
            "ONRAMP_SMTP_URL has credentials but starttls=false: refusing to log in over plain "
            "text (use smtps:// or drop starttls=false)"
        )
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if use_ssl else 25),
        ssl=use_ssl,
        starttls=starttls and not use_ssl,
        username=username,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpProvider(Provider):
    """Sends over SMTP (STARTTLS or implicit TLS)."""

    name = "smtp"
    batch_size = 200

    def __init__(
        self,
        target: SmtpTarget,
        sender: str,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.sender = sender
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._conn: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings, retry: RetryPolicy | None = None) -> SmtpProvider:
        if not settings.smtp_url:
            raise ProviderError(
                "ONRAMP_SMTP_URL is not set (needed with ONRAMP_EMAIL_PROVIDER=smtp)"
            )
        return cls(
            parse_smtp_url(settings.smtp_url),
            settings.email_from,
            settings.http_timeout_s,
            retry,
        )

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        t = self.target
        try:
            if t.ssl:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    t.host, t.port, timeout=self.timeout_s, context=self.ssl_context
                )
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout_s)
                if t.starttls:
                    conn.ehlo()
                    if not conn.has_extn("starttls"):
                        conn.close()
                        raise ProviderError(
                            f"SMTP server {t.host}:{t.port} offers no STARTTLS: refusing to "
                            "log in over plain text (use smtps:// or a server with STARTTLS)"
                        )
                    conn.starttls(context=self.ssl_context)
            if t.username:
                if not (t.ssl or t.starttls):  # parse_smtp_url refuses this; never send it
                    raise ProviderError("refusing to log in to SMTP over plain text")
                conn.login(t.username, t.password or "")
            conn.ehlo_or_helo_if_needed()  # mail()/rcpt() below do not greet on their own
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError(f"SMTP login refused by {t.host}: {exc.smtp_code}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ProviderError(
                f"cannot connect to SMTP server {t.host}:{t.port}: {type(exc).__name__}",
            ) from exc
        self._conn = conn
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None

    def send(
        self, emails: list[OutgoingEmail], tracker: RequestTracker | None = None
    ) -> list[SendOutcome]:
        """Each email is its own SMTP transaction; with a tracker it is claimed right before and
        recorded right after it, so a crash leaves at most one message unconfirmed."""
        outcomes = []
        for email in emails:
            if tracker is not None:
                tracker.claim([email.message_id])
            outcome = self._send_one(email)
            if tracker is not None:
                tracker.record([outcome])
            outcomes.append(outcome)
        return outcomes

    def _send_one(self, email: OutgoingEmail) -> SendOutcome:
        message = build_mime(email, self.sender)
        attempt = 0
        while True:
            start = time.perf_counter()
            data_sent = False
            try:
                conn = self._connect()
                self.calls += 1
                # smtplib.send_message = MAIL, RCPT, DATA; we split so we know whether the
                # message body went out before a failure.
                code, resp = conn.mail(self.sender)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, resp, self.sender)
                code, resp = conn.rcpt(email.to)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({email.to: (code, resp)})
                data_sent = True
                code, resp = conn.data(message.as_bytes(policy=SMTP_POLICY))  # CRLF
                if code != 250:
                    raise smtplib.SMTPDataError(code, resp)
                return SendOutcome(email.message_id, "sent", None, message["Message-ID"])
            except smtplib.SMTPRecipientsRefused as exc:
                code, resp = next(iter(exc.recipients.values()))
                outcome = self._reply_failure(email, code, resp, attempt)
            except smtplib.SMTPResponseException as exc:
                outcome = self._reply_failure(email, exc.smtp_code, exc.smtp_error, attempt)
            except ProviderError as exc:  # could not connect
                self._drop()
                if attempt >= self.retry.max_retries:
                    return SendOutcome(email.message_id, "failed", str(exc))
                outcome = None
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                if data_sent:
                    return SendOutcome(
                        email.message_id,
                        "sent_unconfirmed",
                        f"connection lost after DATA ({type(exc).__name__}); not resent",
                    )
                if attempt >= self.retry.max_retries:
                    return SendOutcome(email.message_id, "failed", f"{type(exc).__name__}")
                outcome = None
            finally:
                self.wait_seconds += time.perf_counter() - start
            if outcome is not None:
                return outcome
            delay = self.retry.backoff(attempt)
            attempt += 1
            start = time.perf_counter()
            self.retry.sleep(delay)
            self.wait_seconds += time.perf_counter() - start

    def _reply_failure(
        self, email: OutgoingEmail, code: int, resp: bytes | str, attempt: int
    ) -> SendOutcome | None:
        """5xx: failed for good (with the server's words); 4xx: None = retry after backoff."""
        text = resp.decode(errors="replace") if isinstance(resp, bytes) else str(resp)
        text = redact_addresses(text)  # servers quote the recipient ("<x@y>: user unknown")
        try:
            self._conn.rset() if self._conn is not None else None
        except (OSError, smtplib.SMTPException):
            self._drop()
        if 400 <= code < 500 and attempt < self.retry.max_retries:
            return None
        log.info("smtp refused %s: %s", hash_email(email.to), code)
        return SendOutcome(email.message_id, "failed", f"{code} {text}".strip()[:500])
