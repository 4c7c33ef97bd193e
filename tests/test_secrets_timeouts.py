"""Every warehouse connection has timeouts (connect, lock, statement, TCP keepalives), set from
the environment, and a timeout that fires says which one in one line (`--wait` included)."""

from __future__ import annotations

import socket
import time

import pytest
import sqlalchemy as sa


@pytest.fixture
def short_timeouts(monkeypatch, pg_url):
    monkeypatch.setenv("ONRAMP_DATABASE_URL", pg_url)
    monkeypatch.setenv("ONRAMP_DB_LOCK_TIMEOUT_S", "1")
    monkeypatch.setenv("ONRAMP_DB_STATEMENT_TIMEOUT_S", "3")
    monkeypatch.setenv("ONRAMP_DB_CONNECT_TIMEOUT_S", "2")
    monkeypatch.setenv("ONRAMP_DB_KEEPALIVES_IDLE_S", "45")


def test_connections_carry_the_configured_timeouts(short_timeouts):
    from onramp.warehouse import get_engine

    with get_engine().connect() as conn:
        assert conn.execute(sa.text("show lock_timeout")).scalar() == "1s"
        assert conn.execute(sa.text("show statement_timeout")).scalar() == "3s"
        params = conn.connection.dbapi_connection.info.get_parameters()
    assert params["connect_timeout"] == "2"
    assert params["keepalives_idle"] == "45"


def test_wait_gives_up_after_the_lock_timeout_with_one_line(short_timeouts, pg_url):
    """`onramp sync --wait` while another run holds the segment: a clear line, not a hang."""
    from email_sync.segment_lock import segment_lock
    from onramp.errors import OnrampError
    from onramp.warehouse import get_engine, sqlalchemy_url

    other = sa.create_engine(sqlalchemy_url(pg_url))
    with other.connect() as holder:
        with segment_lock(holder, "busy_segment", wait=False):
            start = time.monotonic()
            with pytest.raises(OnrampError) as caught:
                with get_engine().connect() as conn:
                    with segment_lock(conn, "busy_segment", wait=True):
                        pass
            waited = time.monotonic() - start
    other.dispose()
    message = str(caught.value)
    assert waited < 10
    assert "\n" not in message
    assert "ONRAMP_DB_LOCK_TIMEOUT_S" in message and "1s" in message, message


def test_a_statement_timeout_says_so_in_one_line(short_timeouts):
    from onramp.errors import OnrampError
    from onramp.warehouse import get_engine

    with pytest.raises(OnrampError) as caught:
        with get_engine().connect() as conn:
            conn.execute(sa.text("select pg_sleep(8)"))
    message = str(caught.value)
    assert "\n" not in message and "ONRAMP_DB_STATEMENT_TIMEOUT_S" in message, message


def test_a_server_that_never_answers_fails_within_the_connect_timeout(monkeypatch, onramp_home):
    from onramp.errors import OnrampError
    from onramp.warehouse import get_engine

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel accepts; nobody ever answers
    port = silent.getsockname()[1]
    monkeypatch.setenv("ONRAMP_DATABASE_URL", f"postgresql://u:secret-pw@127.0.0.1:{port}/db")
    monkeypatch.setenv("ONRAMP_DB_CONNECT_TIMEOUT_S", "2")
    start = time.monotonic()
    try:
        with pytest.raises(OnrampError) as caught:
            get_engine()
    finally:
        silent.close()
    message = str(caught.value)
    assert time.monotonic() - start < 15
    assert "ONRAMP_DB_CONNECT_TIMEOUT_S" in message and "secret-pw" not in message, message


def test_dbt_gets_the_same_lock_and_statement_timeouts(short_timeouts):
    from onramp.warehouse import dbt_env

    env = dbt_env()
    assert "-c lock_timeout=1000" in env["PGOPTIONS"]
    assert "-c statement_timeout=" in env["PGOPTIONS"]
    assert env["ONRAMP_PG_CONNECT_TIMEOUT"] == "2"
    assert env["ONRAMP_PG_KEEPALIVES_IDLE"] == "45"


def test_a_dbt_connection_runs_with_the_lock_and_statement_timeouts(short_timeouts, tmp_path):
    """A real dbt query (dbt show) reads the settings on its own connection."""
    from dbt.cli.main import dbtRunner

    from onramp.dbt import PROJECT_DIR, _dbt_environment
    from onramp.settings import Settings

    messages: list[str] = []
    query = (
        "select current_setting('lock_timeout') as lt, current_setting('statement_timeout') as st"
    )
    with _dbt_environment(Settings.from_env(), offline=False):
        result = dbtRunner(callbacks=[lambda e: messages.append(str(e.info.msg))]).invoke(
            [
                "show",
                "--inline",
                query,
                "--project-dir",
                str(PROJECT_DIR),
                "--target-path",
                str(tmp_path / "target"),
                "--log-path",
                str(tmp_path / "logs"),
            ]
        )
    assert result.success
    preview = next(m for m in messages if m.startswith("Previewing inline node"))
    assert "| 1s | 3s |" in preview, preview
