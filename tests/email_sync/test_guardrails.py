"""Consent, suppression, frequency cap by priority, blast-radius breaker (outbox provider)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from email_sync.sync import BlastRadiusExceeded, SyncResult, sync_all, sync_segment
from tests.email_sync.conftest import member, outbox_index, spec, statuses

AS_OF = date(2026, 11, 26)


def welcome(**extra):
    return {"email": {"template": "welcome", "kind": "marketing", "priority": 40}, **extra}


def test_no_consent_and_suppressed_addresses_are_never_sent_and_counted(
    engine, settings, segments, outbox
):
    segments.create("new_signups", [member(1), member(2, marketing_opt_in=False), member(3)])
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into email_sync.suppressions (email, reason, source) "
                "values ('dev3@example.com', 'unsubscribe', 'webhook')"
            )
        )

    result = sync_segment(
        engine, settings, spec("new_signups", **welcome()), AS_OF, provider=outbox
    )

    assert (result.sent, result.suppressed) == (1, 2)
    assert [r["to"] for r in outbox_index(settings)] == ["dev1@example.com"]
    assert statuses(engine) == {
        "dev-0001/entry-1": "sent",
        "dev-0002/entry-1": "suppressed",
        "dev-0003/entry-1": "suppressed",
    }


def test_transactional_email_does_not_need_marketing_consent(engine, settings, segments, outbox):
    segments.create(
        "rate_limited", [member(1, marketing_opt_in=False, events_429=30)], {"events_429": "int"}
    )
    s = spec("rate_limited", email={"template": "rate_limited", "kind": "transactional"})

    result = sync_segment(engine, settings, s, AS_OF, provider=outbox)

    assert result.sent == 1
    assert outbox_index(settings)[0]["subject"] == "Your API calls were rate limited 30 times"


def test_frequency_cap_keeps_the_higher_priority_email(engine, settings, segments, outbox):
    segments.create("new_signups", [member(1), member(2)])
    segments.create("stopped_traffic", [member(1, top_route="/v1/orders")], {"top_route": "text"})
    low = spec("new_signups", **welcome())
    high = spec(
        "stopped_traffic",
        email={"template": "stopped_traffic", "kind": "marketing", "priority": 60},
    )

    results = sync_all(engine, settings, [low, high], AS_OF, provider=outbox)

    assert [r.segment for r in results if isinstance(r, SyncResult)] == [
        "stopped_traffic",
        "new_signups",
    ]
    assert statuses(engine, "stopped_traffic") == {"dev-0001/entry-1": "sent"}
    assert statuses(engine, "new_signups") == {
        "dev-0001/entry-1": "capped",
        "dev-0002/entry-1": "sent",
    }
    assert results[1].capped == 1


def test_cap_within_one_segment_and_bypass_for_alerts(engine, settings, segments, outbox):
    cols = {"feature_name": "text", "docs_url": "text"}
    rows = [
        member(1, member_key="dev-0001:/v1/a", feature_name="A", docs_url="https://d/a"),
        member(1, member_key="dev-0001:/v1/b", feature_name="B", docs_url="https://d/b"),
    ]
    segments.create("unused_feature", rows, cols)
    segments.create(
        "quota_exceeded",
        [member(1, member_key="dev-0001:2026-11", quota_used_pct=130.0, monthly_quota=1000)],
        {"quota_used_pct": "numeric", "monthly_quota": "int"},
    )
    feature = spec("unused_feature", email={"template": "unused_feature", "priority": 30})
    alert = spec(
        "quota_exceeded",
        email={"template": "quota_exceeded", "kind": "transactional", "bypass_frequency_cap": True},
    )

    r_feature = sync_segment(engine, settings, feature, AS_OF, provider=outbox)
    r_alert = sync_segment(engine, settings, alert, AS_OF, provider=outbox)

    assert (r_feature.sent, r_feature.capped) == (1, 1)
    assert r_alert.sent == 1
    assert len(outbox_index(settings)) == 2


def test_weekly_cap_counts_the_last_seven_days(engine, settings, segments, outbox):
    """One re-entry a day for four days, weekly cap 2: days 1-2 sent, days 3-4 capped."""
    s = spec("new_signups", reentry=True, **welcome())
    weekly = dataclasses.replace(settings, weekly_email_cap=2)
    segments.create("new_signups", [member(1)])
    start = datetime(2026, 11, 20, 9, tzinfo=UTC)
    outcomes = []
    for day in range(4):
        now = start + timedelta(days=day)
        result = sync_segment(engine, weekly, s, AS_OF, provider=outbox, now=now)
        outcomes.append((result.sent, result.capped))
        with engine.begin() as conn:
            # The member leaves (so tomorrow is a re-entry) and today's rows get today's clock.
            conn.execute(sa.text("update email_sync.segment_membership set exited_at = now()"))
            conn.execute(
                sa.text(
                    "update email_sync.messages set sent_at = :t, created_at = :t "
                    "where created_at > :t"
                ),
                {"t": now},
            )

    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 1)]
    assert len(outbox_index(settings)) == 2


def test_blast_radius_breaker_refuses_with_one_line(engine, settings, segments, outbox):
    small = dataclasses.replace(settings, blast_radius_min_members=5)
    segments.create("stage_sandbox", [member(n) for n in range(10)])
    s = spec("stage_sandbox", list="Stage: sandbox")
    first = sync_segment(engine, small, s, AS_OF, provider=outbox)  # first sync never trips it
    assert first.entered == 10
    segments.replace("stage_sandbox", [member(n) for n in range(3)])

    with pytest.raises(BlastRadiusExceeded) as exc:
        sync_segment(engine, small, s, AS_OF, provider=outbox)

    assert str(exc.value) == (
        "segment stage_sandbox: 7 of 10 members would exit (70% > 50%); refusing to sync, "
        "rerun with --allow-large if this change is expected"
    )
    with engine.connect() as conn:
        active = conn.execute(
            sa.text("select count(*) from email_sync.segment_membership where exited_at is null")
        ).scalar()
        runs = conn.execute(
            sa.text("select status, message from email_sync.sync_runs order by run_id")
        ).all()
    assert active == 10  # nothing applied
    assert runs[-1][0] == "refused" and runs[-1][1] == str(exc.value)

    allowed = sync_segment(engine, small, s, AS_OF, provider=outbox, allow_large=True)
    assert allowed.exited == 7


def test_small_changes_pass_the_breaker(engine, settings, segments, outbox):
    small = dataclasses.replace(settings, blast_radius_min_members=5)
    segments.create("stage_sandbox", [member(n) for n in range(10)])
    s = spec("stage_sandbox", list="Stage: sandbox")
    sync_segment(engine, small, s, AS_OF, provider=outbox)
    segments.replace("stage_sandbox", [member(n) for n in range(2, 14)])

    result = sync_segment(engine, small, s, AS_OF, provider=outbox)

    assert (result.entered, result.exited) == (4, 2)
