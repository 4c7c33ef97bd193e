"""TLS settings reach every client: sslmode & co. of ONRAMP_DATABASE_URL reach dbt, and SMTP
with credentials uses STARTTLS by default and never logs in over plain text."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator

import pytest

from email_sync.providers import OutgoingEmail, ProviderError, RetryPolicy
from email_sync.providers.smtp import SmtpProvider, parse_smtp_url
from onramp.settings import Settings
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def no_tls_postgres() -> Iterator[int]:
    """A TCP port that answers PostgreSQL's SSLRequest with 'N' (no TLS here) and then hangs up:
    a client told sslmode=require must refuse it; one left at the default goes on in plain text."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(8)
                conn.sendall(b"N")
                conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def test_sslmode_of_the_database_url_reaches_dbt(no_tls_postgres, tmp_path, monkeypatch):
    """A real dbt connection (dbt debug --connection) with the URL's sslmode=require."""
    from dbt.cli.main import dbtRunner

    from onramp.dbt import PROJECT_DIR, _dbt_environment
    from onramp.warehouse import dbt_env

    for var in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"):
        monkeypatch.delenv(var, raising=False)
    url = (
        f"postgresql://onramp:pw@127.0.0.1:{no_tls_postgres}/warehouse"
        "?sslmode=require&sslrootcert=/etc/ca.pem&sslcert=/etc/c.pem&sslkey=/etc/c.key"
    )
    settings = dataclasses.replace(Settings.from_env(), database_url=url, home=tmp_path)

    env = dbt_env(settings)
    assert env["PGSSLMODE"] == "require"
    assert (env["PGSSLROOTCERT"], env["PGSSLCERT"], env["PGSSLKEY"]) == (
        "/etc/ca.pem",
        "/etc/c.pem",
        "/etc/c.key",
    )

    messages: list[str] = []
    with _dbt_environment(settings, offline=False):
        result = dbtRunner(callbacks=[lambda e: messages.append(str(e.info.msg))]).invoke(
            [
                "debug",
                "--connection",
                "--project-dir",
                str(PROJECT_DIR),
                "--log-path",
                str(tmp_path / "logs"),
            ]
        )
    assert not result.success
    assert any("SSL was required" in m for m in messages), [m for m in messages if "rror" in m]


def email() -> OutgoingEmail:
    return OutgoingEmail(
        message_id="m-1",
        to="dev1@example.com",
        subject="hello",
        html="<p>hi</p>",
        text="hi",
        segment="s",
        template="t",
    )


def provider(url: str, server: SmtpServer) -> SmtpProvider:
    return SmtpProvider(
        parse_smtp_url(url),
        "onramp@example.com",
        timeout_s=5,
        retry=RetryPolicy(max_retries=0, sleep=lambda s: None),
        ssl_context=server.client_ssl_context() if server.tls else None,
    )


def test_smtp_with_credentials_uses_starttls_by_default():
    # The server would also take a plain-text login: only the client's default protects it.
    with SmtpServer(auth=("onramp", "s3cret"), tls="starttls", require_tls_for_auth=False) as srv:
        url = srv.url.replace("?starttls=true", "")
        outcome = provider(url, srv).send([email()])[0]
        messages = srv.messages

    assert outcome.status == "sent", outcome
    assert len(messages) == 1 and messages[0].tls and messages[0].authenticated_as == "onramp"


@pytest.mark.parametrize("query", ["?starttls=false", ""])
def test_smtp_refuses_to_log_in_over_plain_text(query):
    """Told not to use STARTTLS, or the server offers none: the password is never sent."""
    with SmtpServer(auth=("onramp", "s3cret")) as srv:
        url = srv.url + query
        try:
            outcome = provider(url, srv).send([email()])[0]
            reason = outcome.reason or ""
            assert outcome.status == "failed"
        except ProviderError as exc:  # refused when the URL is read
            reason = str(exc)
        received = srv.messages

    assert received == []
    assert "s3cret" not in reason
    assert "plain text" in reason or "STARTTLS" in reason, reason
