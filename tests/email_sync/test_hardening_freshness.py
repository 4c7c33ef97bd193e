"""`onramp sync` holds back segments with requires_fresh_events while raw events are stale, as the
Dagster sync does, and says so in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from tests.email_sync.conftest import member, outbox_index

ARGS = ["sync", "--segment", "signup_no_calls_7d", "--as-of", "2026-11-26"]


@pytest.fixture
def manifest(tmp_path, monkeypatch):
    meta = {
        "email": {"template": "welcome", "kind": "transactional"},
        "requires_fresh_events": True,
    }
    nodes = {
        "model.onramp.seg_signup_no_calls_7d": {
            "resource_type": "model",
            "name": "seg_signup_no_calls_7d",
            "schema": "segments",
            "alias": "seg_signup_no_calls_7d",
            "config": {"meta": {"onramp": meta}},
        }
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": nodes}))
    monkeypatch.setattr("email_sync.commands.find_manifest", lambda: path)
    monkeypatch.setenv("ONRAMP_HOME", str(tmp_path / "home"))
    return path


@pytest.fixture
def raw_events(engine) -> Iterator[sa.Engine]:
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema if exists raw cascade"))
        conn.execute(sa.text("create schema raw"))
        conn.execute(sa.text("create table raw.api_events (occurred_at timestamptz not null)"))
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema if exists raw cascade"))


def add_event(engine, at: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("insert into raw.api_events values (cast(:at as timestamptz))"), {"at": at}
        )


def test_cli_sync_holds_back_a_fresh_events_segment_when_events_are_stale(
    engine, segments, manifest, raw_events, tmp_path
):
    segments.create("signup_no_calls_7d", [member(1), member(2)])
    add_event(engine, "2026-11-20T10:00:00Z")  # six days before the as-of day: stale

    result = CliRunner().invoke(cli, ARGS)

    assert result.exit_code == 0, result.output
    held = [line for line in result.output.splitlines() if "held back" in line]
    assert len(held) == 1 and "stale" in held[0], result.output
    assert outbox_index_of(tmp_path) == []
    with engine.connect() as conn:  # nothing recorded: the next sync on fresh data sends
        assert conn.execute(sa.text("select count(*) from email_sync.messages")).scalar() == 0

    add_event(engine, "2026-11-26T22:00:00Z")
    fresh = CliRunner().invoke(cli, ARGS)
    assert fresh.exit_code == 0, fresh.output
    assert "held back" not in fresh.output
    assert len(outbox_index_of(tmp_path)) == 2


def outbox_index_of(tmp_path):
    from types import SimpleNamespace

    return outbox_index(SimpleNamespace(outbox_dir=tmp_path / "home" / "outbox"))
