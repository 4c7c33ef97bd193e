"""Fourteen consecutive as-of days on generated sample data: dbt runs and every segment syncs each
day (outbox), then the ledger and the outbox are checked per archetype against the campaigns
declared in the segment YAML.

One incremental `dbt run` per day (the first one a full refresh) on a small sample keeps this to
14 dbt invocations. The frequency cap counts by the rows' timestamps, so each day's rows get the
simulated day's clock.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from email_sync.sequences import in_holdout
from email_sync.specs import SegmentSpec, load_segment_specs
from email_sync.sync import sync_all
from onramp.settings import Settings
from tests.email_sync.conftest import outbox_index

END = date(2026, 11, 26)
DAYS = 14
START = END - timedelta(days=DAYS - 1)


def _clock(day: date) -> datetime:
    return datetime.combine(day, time(6), tzinfo=UTC)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sample_data import generate

    out = tmp_path_factory.mktemp("replay-sample")
    generate(out, developers=150, days=40, seed=11, as_of=END)
    return out


@pytest.fixture
def replay(engine, settings: Settings, sample_dir: Path, tmp_path: Path, monkeypatch):
    """Load the sample once, then per day: dbt run as of the day, sync everything, stamp."""
    from ingest.loader import load_manifest_dir
    from ingest.schema import ensure_raw_schema
    from onramp.dbt import manifest_path, run_dbt

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema if exists raw cascade"))
    ensure_raw_schema(engine)
    load_manifest_dir(engine, sample_dir)
    archetypes = {
        row["developer_id"]: row["archetype"]
        for row in csv.DictReader((sample_dir / "archetypes.csv").open())
    }
    # one never-integrating developer unsubscribed: nothing may reach them
    with engine.begin() as conn:
        suppressed = conn.execute(
            sa.text(
                "select developer_id, lower(btrim(email)) from raw.developers "
                "where developer_id = any(:ids) and marketing_opt_in order by developer_id limit 1"
            ),
            {"ids": [d for d, a in archetypes.items() if a == "never_integrates"]},
        ).one()
        conn.execute(
            sa.text(
                "insert into email_sync.suppressions (email, reason, source) "
                "values (:e, 'unsubscribe', 'test')"
            ),
            {"e": suppressed[1]},
        )
    specs: list[SegmentSpec] = []
    for i in range(DAYS):
        day = START + timedelta(days=i)
        run_dbt(["run", *(["--full-refresh"] if i == 0 else [])], as_of=day, settings=settings)
        if i == 0:
            specs = load_segment_specs(manifest_path(settings))
        results = sync_all(engine, settings, specs, day, now=_clock(day), allow_large=True)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors
        with engine.begin() as conn:
            # today's rows get today's (simulated) clock: the cap reads these timestamps
            conn.execute(
                sa.text(
                    "update email_sync.messages set created_at = :t "
                    "where created_at > :t + interval '1 day'"
                ),
                {"t": _clock(day)},
            )
            conn.execute(
                sa.text(
                    "update email_sync.messages set sent_at = :t "
                    "where sent_at > :t + interval '1 day'"
                ),
                {"t": _clock(day)},
            )
    return {"archetypes": archetypes, "specs": {s.name: s for s in specs}, "suppressed": suppressed}


def _rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def test_fourteen_days_of_campaigns(engine, settings, replay):
    archetypes = replay["archetypes"]
    specs = replay["specs"]
    messages = _rows(engine, "select * from email_sync.messages")
    membership = {
        (m["segment"], m["member_key"]): m
        for m in _rows(engine, "select * from email_sync.segment_membership")
    }
    developers = {
        d["developer_id"]: d
        for d in _rows(engine, "select developer_id, marketing_opt_in from raw.developers")
    }
    by_member: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for m in messages:
        by_member[(m["segment"], m["member_key"], m["period"])].append(m)

    # --- the never-integrating developer: content, content, content, ask ... on the right days
    ni = specs["stage_not_integrated"].sequence
    assert ni is not None and len(ni.steps) >= 8
    checked = 0
    for (segment, key, _period), rows in by_member.items():
        if segment != "stage_not_integrated" or archetypes.get(key) != "never_integrates":
            continue
        rows.sort(key=lambda r: int(r["step"]))
        assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
        started = membership[(segment, key)]["sequence_started_as_of"]
        previous_settled = None
        for r in rows:
            step = ni.step(int(r["step"]))
            created = r["created_at"].date()
            due = started + timedelta(days=step.after_days)
            expected = max(due, previous_settled + timedelta(days=1)) if previous_settled else due
            assert created == expected, (key, r["step"], created, expected)
            if r["status"] == "sent":
                assert r["sent_at"].date() == created + timedelta(days=r["deferrals"])
                previous_settled = r["sent_at"].date()
            else:
                assert r["status"] in ("held_out", "suppressed", "capped"), r
                previous_settled = created
        if all(r["status"] == "sent" for r in rows) and len(rows) >= 4:
            kinds = [ni.step(int(r["step"])).kind for r in rows[:4]]
            assert kinds == ["content", "content", "content", "ask"]
            checked += 1
    assert checked >= 3, "expected never-integrating developers who got the first four steps"

    # --- nothing after the first call: a run ends the day its member leaves or reaches the goal
    ended = 0
    for (segment, key), m in membership.items():
        end = m["goal_reached_as_of"] or m["exited_as_of"]
        if end is None or segment not in specs or specs[segment].sequence is None:
            continue
        for r in by_member.get((segment, key, m["sequence_period"] or ""), []):
            if r["status"] == "sent":
                assert r["sent_at"].date() < end, (segment, key, r["step"], end)
        ended += 1
    assert ended > 0

    # --- reaching production stops the sandbox sequence that same day
    moved = [
        m
        for (segment, key), m in membership.items()
        if segment == "stage_sandbox" and m["goal_reached_as_of"] is not None
    ]
    assert moved, "expected a sandbox developer to reach production in the replay"
    for m in moved:
        assert (
            "stage_production",
            m["member_key"],
        ) in membership, "goal reached means the developer is in production"
        for r in by_member.get(("stage_sandbox", m["member_key"], m["sequence_period"]), []):
            assert r["created_at"].date() <= m["goal_reached_as_of"]
            if r["status"] == "sent":
                assert r["sent_at"].date() < m["goal_reached_as_of"]

    # --- never more than the daily cap; a capped step arrives later
    per_day = Counter(
        (r["developer_id"], r["sent_at"].date())
        for r in messages
        if r["status"] == "sent" and not r["bypass_cap"]
    )
    assert per_day and max(per_day.values()) <= settings.daily_email_cap
    deferred_then_sent = [r for r in messages if r["deferrals"] > 0 and r["status"] == "sent"]
    assert deferred_then_sent, "expected a step the cap deferred and a later day delivered"

    # --- holdouts: recorded, the same hash, never emailed by that campaign
    sent_by_campaign = {
        (r["segment"], r["developer_id"]) for r in messages if r["status"] == "sent"
    }
    held = [r for r in messages if r["status"] == "held_out"]
    assert held
    for r in held:
        share = specs[r["segment"]].sequence.holdout_share
        assert in_holdout(r["segment"], r["developer_id"], share)
        assert (r["segment"], r["developer_id"]) not in sent_by_campaign
    outbox = outbox_index(settings)
    held_addresses = {(r["segment"], r["email"]) for r in held}
    assert not {(e["segment"], e["to"]) for e in outbox} & held_addresses

    # --- consent and suppression
    for r in messages:
        if r["status"] != "sent":
            continue
        assert r["email"] != replay["suppressed"][1]
        if r["kind"] == "marketing":
            assert developers[r["developer_id"]]["marketing_opt_in"], r
    assert len(outbox) == sum(r["status"] == "sent" for r in messages)

    # --- re-entry follows each campaign's rule
    for (segment, key), m in membership.items():
        seq = specs[segment].sequence if segment in specs else None
        if seq is None or m["entry_count"] < 2:
            continue
        periods = {p for (s, k, p) in by_member if s == segment and k == key}
        if seq.reentry_after_days is None:
            assert periods <= {"once"}
        elif m["sequence_period"] is not None:
            gap = m["entered_as_of"] - m["previous_exited_as_of"]
            assert gap.days >= seq.reentry_after_days

    # --- every funnel-stage campaign sent something, with campaign and step headers
    for name in ("stage_not_integrated", "stage_sandbox"):
        assert any(e["segment"] == name for e in outbox), name
    sample = next(e for e in outbox if e["segment"] == "stage_not_integrated")
    eml = (settings.outbox_dir / sample["file"]).read_text()
    assert "X-Onramp-Campaign: stage_not_integrated" in eml and "X-Onramp-Step: " in eml
    assert "utm_campaign=3Dstage_not_integrated" in eml or "utm_campaign=stage_not" in eml
