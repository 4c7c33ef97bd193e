"""A first sync, a renamed segment or a changed member_key never mass-emails by default, and
time-keyed segments (developer x day) do not trip the blast-radius breaker every day."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from email_sync.errors import BlastRadiusExceeded
from email_sync.specs import spec_from_meta
from email_sync.sync import sync_segment
from onramp.errors import OnrampError
from tests.email_sync.conftest import member, outbox_index, spec

AS_OF = date(2026, 11, 26)
WELCOME = {"email": {"template": "welcome", "kind": "marketing"}}
ALERT = {
    "email": {"template": "rate_limited", "kind": "transactional", "bypass_frequency_cap": True}
}


@pytest.fixture
def small_radius(settings):
    """A blast-radius minimum of 50 members, so tests stay small."""
    return dataclasses.replace(settings, blast_radius_min_members=50)


def active_members(engine, segment: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "select count(*) from email_sync.segment_membership "
                "where segment = :s and exited_at is null"
            ),
            {"s": segment},
        ).scalar_one()


def test_first_sync_of_a_large_segment_records_membership_without_sending(
    engine, small_radius, segments, outbox
):
    segments.create("new_signups", [member(n) for n in range(80)])
    s = spec("new_signups", **WELCOME)

    first = sync_segment(engine, small_radius, s, AS_OF, provider=outbox)

    assert (first.entered, first.sent) == (80, 0)
    assert outbox_index(small_radius) == []
    assert active_members(engine, "new_signups") == 80
    assert any("--initial send" in note and "80" in note for note in first.notes), first.notes

    # From then on, entries are emailed as usual.
    segments.replace("new_signups", [member(n) for n in range(81)])
    second = sync_segment(engine, small_radius, s, AS_OF, provider=outbox)
    assert (second.entered, second.sent) == (1, 1)


def test_first_sync_with_initial_send_emails_every_member(engine, small_radius, segments, outbox):
    segments.create("new_signups", [member(n) for n in range(80)])

    first = sync_segment(
        engine,
        small_radius,
        spec("new_signups", **WELCOME),
        AS_OF,
        provider=outbox,
        initial="send",
    )

    assert first.sent == 80 and len(outbox_index(small_radius)) == 80


def test_a_small_first_sync_still_sends(engine, small_radius, segments, outbox):
    segments.create("new_signups", [member(n) for n in range(50)])

    first = sync_segment(
        engine, small_radius, spec("new_signups", **WELCOME), AS_OF, provider=outbox
    )

    assert first.sent == 50


def test_initial_must_be_record_or_send(engine, small_radius, segments, outbox):
    segments.create("new_signups", [member(1)])
    with pytest.raises(OnrampError, match="initial must be record or send"):
        sync_segment(
            engine,
            small_radius,
            spec("new_signups", **WELCOME),
            AS_OF,
            provider=outbox,
            initial="yes",
        )


def test_a_renamed_segment_records_membership_without_sending(
    engine, small_radius, segments, outbox
):
    segments.create("new_signups", [member(n) for n in range(80)])
    sync_segment(
        engine,
        small_radius,
        spec("new_signups", **WELCOME),
        AS_OF,
        provider=outbox,
        initial="send",
    )
    renamed = spec_from_meta("welcome_new", WELCOME, table="seg_new_signups")

    result = sync_segment(engine, small_radius, renamed, AS_OF, provider=outbox)

    assert (result.entered, result.sent) == (80, 0)
    assert len(outbox_index(small_radius)) == 80  # only the first, deliberate send


def test_a_changed_member_key_records_membership_without_sending(
    engine, small_radius, segments, outbox
):
    s = spec("new_signups", **WELCOME)
    segments.create("new_signups", [member(n) for n in range(80)])
    sync_segment(engine, small_radius, s, AS_OF, provider=outbox, initial="send")
    rekeyed = [member(n, member_key=f"signup:dev-{n:04d}") for n in range(80)]
    segments.replace("new_signups", rekeyed + [member(99, member_key="signup:dev-0099")])

    result = sync_segment(engine, small_radius, s, AS_OF + timedelta(days=1), provider=outbox)

    # The 80 developers under their new key are not new members; developer 99 is, and is emailed.
    assert (result.entered, result.exited, result.sent) == (81, 80, 1)
    assert len(outbox_index(small_radius)) == 81
    assert any("member_key" in note for note in result.notes), result.notes
    assert active_members(engine, "new_signups") == 81


def rate_limited_day(day: date, developers: range) -> list[dict]:
    return [member(n, member_key=f"dev-{n:04d}:{day.isoformat()}") for n in developers]


def test_time_keyed_segment_does_not_trip_the_breaker_every_day(
    engine, small_radius, segments, outbox
):
    """seg_rate_limited keys members by developer and day: yesterday's members all "leave" and
    today's all "enter". That is a new day, not a change of the segment."""
    s = spec("rate_limited", **ALERT)
    day1, day2, day3 = AS_OF, AS_OF + timedelta(days=1), AS_OF + timedelta(days=2)
    segments.create("rate_limited", rate_limited_day(day1, range(100)))
    sync_segment(engine, small_radius, s, day1, provider=outbox, initial="send")

    segments.replace("rate_limited", rate_limited_day(day2, range(30, 140)))
    second = sync_segment(engine, small_radius, s, day2, provider=outbox)

    assert (second.entered, second.exited, second.sent) == (110, 100, 110)

    # A real jump (110 -> 400 members in a day) still trips it.
    segments.replace("rate_limited", rate_limited_day(day3, range(400)))
    with pytest.raises(BlastRadiusExceeded):
        sync_segment(engine, small_radius, s, day3, provider=outbox)


def test_cli_first_sync_records_and_says_so_unless_initial_send(
    engine, segments, tmp_path, monkeypatch, onramp_home
):
    from click.testing import CliRunner

    from cli.main import cli
    from tests.email_sync.test_commands import write_manifest

    path = write_manifest(tmp_path / "manifest.json")
    monkeypatch.setattr("email_sync.commands.find_manifest", lambda: path)
    monkeypatch.setenv("ONRAMP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONRAMP_BLAST_RADIUS_MIN_MEMBERS", "5")
    segments.create("new_signups", [member(n) for n in range(8)])
    segments.create("quota_exceeded", [member(n) for n in range(8)])
    args = ["sync", "--as-of", "2026-11-26"]

    recorded = CliRunner().invoke(cli, [*args, "--segment", "new_signups"])
    sent = CliRunner().invoke(cli, [*args, "--segment", "quota_exceeded", "--initial", "send"])

    assert recorded.exit_code == 0, recorded.output
    assert recorded.output.splitlines()[3].split()[:5] == ["new_signups", "8", "8", "0", "0"]
    assert "none emailed" in recorded.output and "--initial send" in recorded.output
    assert sent.exit_code == 0, sent.output
    assert sent.output.splitlines()[3].split()[:5] == ["quota_exceeded", "8", "8", "0", "8"]
