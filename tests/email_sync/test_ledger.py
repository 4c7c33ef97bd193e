"""Exactly-once under crashes and concurrent runs."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from email_sync.providers.outbox import OutboxProvider
from email_sync.providers.sendgrid import SendGridProvider
from email_sync.sync import SegmentBusy, sync_segment
from tests.email_sync.conftest import member, outbox_index, spec, statuses

AS_OF = date(2026, 11, 26)
ALERT = {
    "email": {"template": "rate_limited", "kind": "transactional", "bypass_frequency_cap": True}
}
COLS = {"events_429": "int"}


class Crash(BaseException):
    """Stands in for the process dying (kill -9, OOM): nothing after it runs."""


class CrashAfterAccept:
    """Mixin: the provider accepts the batch, then the process dies before onramp commits."""

    crash = True

    def send(self, emails):
        outcomes = super().send(emails)
        if self.crash:
            raise Crash("killed after the provider accepted")
        return outcomes


class CrashBeforeRecord:
    """A ledger tracker whose process dies after the provider's answer, before the record."""

    def __init__(self, tracker):
        self.claim = tracker.claim
        self.release = tracker.release

    def record(self, outcomes):
        raise Crash("killed after the provider accepted")


class CrashingSendGrid(SendGridProvider):
    """SendGrid claims and records per request: the process dies between answer and record."""

    crash = True

    def send(self, emails, tracker=None):
        if self.crash and tracker is not None:
            tracker = CrashBeforeRecord(tracker)
        return super().send(emails, tracker=tracker)


class CrashingOutbox(CrashAfterAccept, OutboxProvider):
    pass


def test_crash_after_sendgrid_accepted_is_not_resent(
    engine, settings, segments, sendgrid_server, sg_provider
):
    segments.create("rate_limited", [member(n, events_429=25) for n in range(3)], COLS)
    s = spec("rate_limited", **ALERT)
    crashing = CrashingSendGrid(
        sendgrid_server.api_key, settings.email_from, host=sendgrid_server.url, timeout_s=2
    )

    with pytest.raises(Crash):
        sync_segment(engine, settings, s, AS_OF, provider=crashing)
    assert set(statuses(engine).values()) == {"pending"}
    assert len(sendgrid_server.messages) == 3

    rerun = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert sendgrid_server.count("POST", "/v3/mail/send") == 1
    assert len(sendgrid_server.messages) == 3
    assert set(statuses(engine).values()) == {"sent_unconfirmed"}
    assert rerun.sent == 0
    assert "3 interrupted message(s) marked sent_unconfirmed" in rerun.notes
    with engine.connect() as conn:
        runs = conn.execute(sa.text("select status from email_sync.sync_runs order by run_id"))
        assert runs.scalars().all() == ["crashed", "ok"]


def test_crash_after_outbox_write_is_confirmed_not_rewritten(engine, settings, segments, outbox):
    segments.create("rate_limited", [member(n, events_429=25) for n in range(3)], COLS)
    s = spec("rate_limited", **ALERT)
    crashing = CrashingOutbox(settings.outbox_dir, settings.email_from)

    with pytest.raises(Crash):
        sync_segment(engine, settings, s, AS_OF, provider=crashing)
    rerun = sync_segment(engine, settings, s, AS_OF, provider=outbox)

    assert set(statuses(engine).values()) == {"sent"}
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 3
    assert len(outbox_index(settings)) == 3
    assert (rerun.sent, outbox.calls) == (0, 0)


def test_crash_before_the_provider_call_is_sent_by_the_next_run(
    engine, settings, segments, sendgrid_server, sg_provider
):
    """Rows decided but never handed to a provider are safe to send: the next run sends them."""
    segments.create("rate_limited", [member(n, events_429=25) for n in range(2)], COLS)
    s = spec("rate_limited", **ALERT)

    class DiesBeforeSending(SendGridProvider):
        def send(self, emails):
            raise Crash("killed before sending")

    dying = DiesBeforeSending(
        sendgrid_server.api_key, settings.email_from, host=sendgrid_server.url
    )
    with pytest.raises(Crash):
        sync_segment(engine, settings, s, AS_OF, provider=dying)
    # attempted_at was stamped before the call: a SendGrid row like this cannot be told apart
    # from an accepted one, so it is not resent...
    rerun = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    assert rerun.sent == 0 and sendgrid_server.messages == []
    assert set(statuses(engine).values()) == {"sent_unconfirmed"}


def test_rows_decided_but_never_attempted_are_adopted(
    engine, settings, segments, sendgrid_server, sg_provider, monkeypatch
):
    segments.create("rate_limited", [member(n, events_429=25) for n in range(2)], COLS)
    s = spec("rate_limited", **ALERT)

    def die(*args, **kwargs):
        raise Crash("killed between decision and delivery")

    with monkeypatch.context() as patch:
        patch.setattr("email_sync.sync.deliver", die)
        with pytest.raises(Crash):
            sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    assert set(statuses(engine).values()) == {"pending"}

    rerun = sync_segment(engine, settings, s, AS_OF, provider=sg_provider)

    assert rerun.sent == 2 and len(sendgrid_server.messages) == 2
    assert rerun.retried == 2


def test_second_concurrent_sync_of_a_segment_exits_with_one_line(
    engine, settings, segments, outbox
):
    segments.create("rate_limited", [member(n, events_429=25) for n in range(3)], COLS)
    s = spec("rate_limited", **ALERT)
    inside, release = threading.Event(), threading.Event()

    class SlowOutbox(OutboxProvider):
        def send(self, emails):
            inside.set()
            release.wait(10)
            return super().send(emails)

    slow = SlowOutbox(settings.outbox_dir, settings.email_from)
    results = {}
    first = threading.Thread(
        target=lambda: results.setdefault(
            "first", sync_segment(engine, settings, s, AS_OF, provider=slow)
        )
    )
    first.start()
    assert inside.wait(10)
    try:
        with pytest.raises(SegmentBusy) as exc:
            sync_segment(engine, settings, s, AS_OF, provider=outbox)
        assert str(exc.value) == (
            "segment rate_limited is being synced by another run; try again later or pass --wait"
        )
        waiter = threading.Thread(
            target=lambda: results.setdefault(
                "waiter", sync_segment(engine, settings, s, AS_OF, provider=outbox, wait=True)
            )
        )
        waiter.start()
    finally:
        release.set()
    first.join(20)
    waiter.join(20)

    assert results["first"].sent == 3
    assert (results["waiter"].entered, results["waiter"].sent) == (0, 0)
    assert len(outbox_index(settings)) == 3
    assert outbox.calls == 0
