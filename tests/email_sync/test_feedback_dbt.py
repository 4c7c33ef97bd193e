"""dbt staging and engagement mart over raw.email_events, built by real dbt in the test database."""

from __future__ import annotations

import secrets

import orjson
import pytest
import sqlalchemy as sa

from email_sync.feedback.events import store_batch
from email_sync.feedback.schema import ensure_feedback_schema_on

DAY = 1_764_000_000  # 2025-11-24 16:00 UTC
NEXT_DAY = DAY + 86_400


def ev(event: str, message: str, ts: int = DAY, campaign: str = "new_signups", **extra):
    return {
        "email": f"{message}@example.com",
        "timestamp": ts,
        "event": event,
        "sg_event_id": secrets.token_urlsafe(12),
        "sg_message_id": f"sg-{message}.filter",
        "onramp_message_id": message,
        "onramp_segment": campaign,
        **extra,
    }


def test_engagement_mart_counts_and_rates(engine, settings):
    from onramp.dbt import run_dbt

    ensure_feedback_schema_on(engine)
    events = (
        [ev("processed", m) for m in ("m1", "m2", "m3")]
        + [ev("delivered", m) for m in ("m1", "m2")]
        + [ev("bounce", "m3", reason="550 unknown user", type="bounce")]
        + [ev("open", "m1"), ev("open", "m1"), ev("open", "m2", ts=NEXT_DAY)]
        + [ev("click", "m1", url="https://example.com/docs")]
        + [ev("group_unsubscribe", "m2", asm_group_id=10001)]
        + [ev("processed", "q1", campaign="quota_warning", onramp_step="2")]
    )
    with engine.begin() as conn:
        conn.execute(sa.text("truncate raw.email_events, raw.email_event_rejects"))
        store_batch(conn, orjson.dumps(events))

    run_dbt(
        ["build", "--select", "stg_sendgrid__email_events+"],
        settings=settings,
    )

    with engine.connect() as conn:
        rows = {
            (r.campaign, r.step, str(r.event_date)): r
            for r in conn.execute(sa.text("select * from marts.fct_email_engagement_daily"))
        }
    day = rows[("new_signups", "entry", "2025-11-24")]
    assert (day.sent, day.delivered, day.unique_opens, day.unique_clicks) == (3, 2, 1, 1)
    assert (day.bounces, day.unsubscribes, day.spam_reports) == (1, 1, 0)
    assert float(day.delivery_rate) == pytest.approx(2 / 3)
    assert float(day.open_rate) == pytest.approx(0.5)
    assert float(day.bounce_rate) == pytest.approx(1 / 3)
    later = rows[("new_signups", "entry", "2025-11-25")]
    assert (later.unique_opens, later.sent, later.open_rate) == (1, 0, None)
    assert rows[("quota_warning", "2", "2025-11-24")].sent == 1


def test_staging_reads_empty_before_the_receiver_ever_ran(engine, settings):
    from onramp.dbt import run_dbt

    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists raw.email_events cascade"))
    try:
        run_dbt(["build", "--select", "stg_sendgrid__email_events+"], settings=settings)
        with engine.connect() as conn:
            total = conn.execute(
                sa.text("select count(*) from marts.fct_email_engagement_daily")
            ).scalar_one()
        assert total == 0
    finally:
        ensure_feedback_schema_on(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select to_regclass('raw.email_events')")).scalar_one()
