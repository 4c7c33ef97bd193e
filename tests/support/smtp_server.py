"""A real SMTP server (aiosmtpd) on 127.0.0.1 for onramp's SMTP provider tests.

Why: the SMTP provider speaks smtplib to a server; tests should see the actual SMTP dialogue (AUTH,
STARTTLS, implicit TLS, envelope) and the parsed messages, not a mock of smtplib.

Usage::

    from tests.support.smtp_server import SmtpServer

    with SmtpServer() as smtp:                         # plain, no auth, ephemeral port
        smtplib.SMTP(smtp.host, smtp.port).sendmail(...)
        smtp.messages                                  # [ReceivedMessage(mail_from, rcpt_tos,
                                                       #   message: email.message.EmailMessage)]

    with SmtpServer(auth=("user", "pass")) as smtp:    # AUTH LOGIN/PLAIN required, no TLS needed
        ...
    with SmtpServer(auth=("user", "pass"), tls="starttls") as smtp:   # STARTTLS offered (and
        ctx = smtp.client_ssl_context()                # required before AUTH); self-signed cert
        ...                                            # made at start, trusted via smtp.cert_path
    with SmtpServer(tls="ssl") as smtp:                # implicit TLS (smtplib.SMTP_SSL)
        ...

``smtp.url`` is an ``ONRAMP_SMTP_URL`` for the server (``smtp://user:pass@127.0.0.1:PORT``, with
``?starttls=true`` or the ``smtps://`` scheme). For code that builds its own
``ssl.create_default_context()``, set ``SSL_CERT_FILE=smtp.cert_path`` so the certificate is
trusted. ``smtp.auth_failures`` counts rejected logins; ``smtp.reject_next(n, code=451)`` makes the
next n RCPT commands fail with that code (transient 4xx or permanent 5xx) to test retries;
``smtp.clear()`` forgets received messages. Pytest: ``from tests.support.smtp_server import
smtp_server`` gives a plain server per test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


@dataclass
class ReceivedMessage:
    """One message as the server received it: SMTP envelope plus the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    authenticated_as: str | None
    tls: bool

    @property
    def subject(self) -> str | None:
        return self.message["Subject"]

    def body(self, subtype: str = "plain") -> str | None:
        """The text/<subtype> part's decoded content, or None."""
        part = self.message.get_body(preferencelist=(subtype,))
        return None if part is None else part.get_content()


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1/localhost and its key; returns (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "smtp-cert.pem"
    key_path = directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler:
    """aiosmtpd handler: collects messages, answers injected RCPT failures."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, srv: Any, session: Session, envelope: Envelope, address: str, mail_options: list
    ) -> str:
        # AUTH is enforced here, not with aiosmtpd's auth_required, which warns when TLS is off.
        if self.server.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, srv: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list
    ) -> str:
        code = self.server._take_rejection()
        if code is not None:
            kind = "try again later" if code < 500 else "mailbox unavailable"
            return f"{code} {kind}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, srv: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.server._add(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=msg,  # type: ignore[arg-type]
                raw=raw,
                authenticated_as=login.decode() if isinstance(login, bytes) else login,
                tls=self.server.tls == "ssl" or session.ssl is not None,
            )
        )
        return "250 Message accepted for delivery"


class _EphemeralController(Controller):
    """Controller that binds port 0 and learns the port before aiosmtpd's readiness probe."""

    def _create_server(self) -> Any:
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


class SmtpServer:
    """A local SMTP server: ``with SmtpServer(auth=..., tls=None|"starttls"|"ssl") as smtp``."""

    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        tls: str | None = None,
        *,
        require_tls_for_auth: bool | None = None,
    ) -> None:
        if tls not in (None, "starttls", "ssl"):
            raise ValueError("tls must be None, 'starttls' or 'ssl'")
        self.auth = auth
        self.tls = tls
        # Plain-text AUTH is allowed unless TLS is on offer (then AUTH needs it, like real servers).
        self.require_tls_for_auth = (
            (tls == "starttls") if require_tls_for_auth is None else require_tls_for_auth
        )
        self.host = "127.0.0.1"
        self.port = 0
        self.cert_path: Path | None = None
        self.auth_failures = 0
        self._messages: list[ReceivedMessage] = []
        self._rejections: list[int] = []
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._controller: Controller | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SmtpServer:
        server_ctx = None
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="onramp-smtp-")
            cert, key = make_self_signed_cert(Path(self._tmp.name))
            self.cert_path = cert
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(cert, key)
        kwargs: dict[str, Any] = {
            "auth_require_tls": self.require_tls_for_auth,
            "auth_required": False,  # enforced in _Handler.handle_MAIL
        }
        if self.auth is not None:
            kwargs["authenticator"] = self._authenticate
        if self.tls == "starttls":
            kwargs["tls_context"] = server_ctx
            kwargs["require_starttls"] = False
        self._controller = _EphemeralController(
            _Handler(self),
            hostname=self.host,
            port=0,
            ssl_context=server_ctx if self.tls == "ssl" else None,
            server_hostname="localhost",
            ready_timeout=10.0,
            **kwargs,
        )
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection / faults

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._rejections.clear()
            self.auth_failures = 0

    def reject_next(self, n: int = 1, code: int = 451) -> None:
        """Answer the next ``n`` RCPT commands with ``code`` instead of 250."""
        with self._lock:
            self._rejections.extend([code] * n)

    @property
    def url(self) -> str:
        scheme = "smtps" if self.tls == "ssl" else "smtp"
        cred = ""
        if self.auth is not None:
            cred = f"{quote(self.auth[0], safe='')}:{quote(self.auth[1], safe='')}@"
        query = "?starttls=true" if self.tls == "starttls" else ""
        return f"{scheme}://{cred}{self.host}:{self.port}{query}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this server's self-signed certificate."""
        if self.cert_path is None:
            raise RuntimeError("this SmtpServer has no TLS")
        return ssl.create_default_context(cafile=str(self.cert_path))

    # ------------------------------------------------------------------ internals

    def _add(self, msg: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(msg)

    def _take_rejection(self) -> int | None:
        with self._lock:
            return self._rejections.pop(0) if self._rejections else None

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            self.auth is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.auth[0]
            and auth_data.password.decode() == self.auth[1]
        )
        if not ok:
            with self._lock:
                self.auth_failures += 1
        # handled=False: aiosmtpd answers 535 itself (handled=True would leave the client waiting)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


try:  # the fixture is optional: bench/ imports this module without pytest
    import pytest

    @pytest.fixture
    def smtp_server() -> Iterator[SmtpServer]:
        """A plain local SMTP server (no auth, no TLS) per test."""
        with SmtpServer() as smtp:
            yield smtp

except ImportError:  # pragma: no cover
    pass
