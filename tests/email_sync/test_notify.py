"""Team notifications: one Slack / signed-webhook message per segment and run, exactly once."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date

import pytest
import sqlalchemy as sa

from email_sync.notify import NotifySpecError, notify_from_meta
from email_sync.notify import post as notify_post
from email_sync.sync import sync_segment
from tests.email_sync.conftest import member, spec
from tests.support.slack_server import SlackServer, slack_server  # noqa: F401

AS_OF = date(2026, 11, 26)
SLACK_ENV = "ONRAMP_TEST_SLACK_URL"
HOOK_ENV = "ONRAMP_TEST_TEAM_HOOK_URL"
SECRET_ENV = "ONRAMP_TEST_TEAM_HOOK_SECRET"
COLUMNS = {"plan": "text", "top_route": "text"}


def _rows(n: int, start: int = 1, **extra):
    return [
        member(i, plan="free" if i % 2 else "growth", top_route=f"/v1/route{i}", **extra)
        for i in range(start, start + n)
    ]


def _spec(**notify):
    block = {"slack": {"url_env": SLACK_ENV}, "show": ["top_route"], "max_members": 3}
    block.update(notify)
    return spec("stopped_traffic", notify=block)


def _notifications(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text("select * from email_sync.notifications order by run_id, destination")
            ).mappings()
        ]


@pytest.fixture
def slack(slack_server: SlackServer, monkeypatch: pytest.MonkeyPatch) -> SlackServer:  # noqa: F811
    """The local Slack hook, its URL in the variable the notify blocks name."""
    monkeypatch.setenv(SLACK_ENV, slack_server.hook_url)
    return slack_server


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(notify_post, "_sleep", recorded.append)
    return recorded


def test_one_message_per_run_with_counts_and_members_then_nothing_on_rerun(
    engine, settings, segments, slack, outbox
):
    segments.create("stopped_traffic", _rows(5), COLUMNS)
    first = sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert first.notified == 1
    assert len(slack.messages) == 1
    message = slack.messages[0]
    assert message["text"] == "Stopped traffic: 5 entered"
    shown = "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")
    assert "Dev 1 Person" in shown and "`/v1/route1`" in shown
    assert "Dev 4 Person" not in shown  # max_members: 3, sorted by member key
    assert "and 2 more" in shown

    again = sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert again.notified == 0
    assert len(slack.requests) == 1  # no change, no message; nothing reposted

    segments.replace("stopped_traffic", _rows(5) + _rows(1, start=9))
    sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert [m["text"] for m in slack.messages] == [
        "Stopped traffic: 5 entered",
        "Stopped traffic: 1 entered",
    ]
    assert [n["status"] for n in _notifications(engine)] == ["posted", "posted"]


def test_a_filter_keeps_free_plan_developers_out(engine, settings, segments, slack, outbox):
    segments.create("stopped_traffic", _rows(6), COLUMNS)
    only_paid = _spec(only={"column": "plan", "not_in": ["free"]}, max_members=10)
    sync_segment(engine, settings, only_paid, AS_OF, provider=outbox)
    (message,) = slack.messages
    assert message["text"] == "Stopped traffic: 3 entered"
    shown = "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")
    assert "Dev 2 Person" in shown and "Dev 1 Person" not in shown and "Dev 3 Person" not in shown

    # Only free-plan developers enter next: nothing to say, nothing posted.
    segments.replace("stopped_traffic", _rows(6) + _rows(1, start=11))
    sync_segment(engine, settings, only_paid, AS_OF, provider=outbox)
    assert len(slack.requests) == 1


def test_a_429_is_waited_out_and_the_message_arrives_once(
    engine, settings, segments, slack, outbox, waits
):
    segments.create("stopped_traffic", _rows(2), COLUMNS)
    slack.fail_next(429, retry_after=2)
    result = sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert waits == [2.0]
    assert result.notified == 1
    assert len(slack.messages) == 1
    assert [r.status for r in slack.requests] == [429, 200]


def test_a_5xx_is_retried_by_the_next_run_and_a_4xx_is_not(
    engine, settings, segments, slack, outbox, monkeypatch
):
    segments.create("stopped_traffic", _rows(2), COLUMNS)
    slack.fail_next(500)
    failed = sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert failed.notified == 0 and failed.notify_failed == 1
    assert any("retried next run" in note for note in failed.notes)
    retried = sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert retried.notified == 1
    assert len(slack.messages) == 1
    (row,) = _notifications(engine)
    assert (row["status"], row["attempts"]) == ("posted", 2)

    # A hook Slack no longer knows (404 no_service) is rejected for good.
    monkeypatch.setenv(SLACK_ENV, slack.hook_url.replace("XXXX", "YYYY"))
    segments.replace("stopped_traffic", _rows(3))
    rejected = sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert rejected.notify_failed == 1
    sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    last = _notifications(engine)[-1]
    assert last["status"] == "rejected" and last["reason"].startswith("404: no_service")
    assert last["attempts"] == 1


def test_generic_webhook_gets_a_signed_json_body(
    engine, settings, segments, slack, outbox, monkeypatch
):
    monkeypatch.setenv(HOOK_ENV, slack.generic_url)
    monkeypatch.setenv(SECRET_ENV, slack.secret)
    settings = dataclasses.replace(
        settings, dashboard_url="https://admin.example/dev/{developer_id}"
    )
    segments.create("stopped_traffic", _rows(2), COLUMNS)
    both = spec(
        "stopped_traffic",
        notify={
            "when": "both",
            "webhook": {"url_env": HOOK_ENV, "secret_env": SECRET_ENV},
            "show": ["top_route"],
        },
    )
    sync_segment(engine, settings, both, AS_OF, provider=outbox)
    segments.replace("stopped_traffic", _rows(1))
    sync_segment(engine, settings, both, AS_OF, provider=outbox)
    first, second = slack.generic
    assert first["type"] == "segment.changed" and first["segment"] == "stopped_traffic"
    assert first["entered"]["count"] == 2 and first["exited"]["count"] == 0
    assert first["entered"]["members"][0]["columns"] == {"top_route": "/v1/route1"}
    assert second["exited"] == {
        "count": 1,
        "members": [{"developer_id": "dev-0002", "link": "https://admin.example/dev/dev-0002"}],
    }

    monkeypatch.setenv(SECRET_ENV, "not-the-shared-secret")
    segments.replace("stopped_traffic", _rows(3))
    refused = sync_segment(engine, settings, both, AS_OF, provider=outbox)
    assert refused.notify_failed == 1
    assert _notifications(engine)[-1]["status"] == "rejected"  # 401: the signature is checked


def test_dry_run_prints_the_message_and_posts_nothing(engine, settings, segments, slack, outbox):
    segments.create("stopped_traffic", _rows(4), COLUMNS)
    result = sync_segment(engine, settings, _spec(), AS_OF, dry_run=True)
    assert slack.requests == []
    (text,) = result.notifications
    assert text.startswith("would post:\nStopped traffic: 4 entered")
    assert "Dev 1 Person · Company 1 · top_route: /v1/route1" in text
    assert "and 1 more" in text


def test_without_the_url_variable_the_message_is_shown_not_recorded(
    engine, settings, segments, outbox, monkeypatch
):
    monkeypatch.delenv(SLACK_ENV, raising=False)
    segments.create("stopped_traffic", _rows(1), COLUMNS)
    result = sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert result.notifications[0].startswith(f"not posted (set {SLACK_ENV} to post)")
    assert _notifications(engine) == []


def test_an_interrupted_post_is_never_repeated(
    engine, settings, segments, slack, outbox, monkeypatch
):
    segments.create("stopped_traffic", _rows(1), COLUMNS)
    monkeypatch.setattr(notify_post, "post_slack", _crash)
    with pytest.raises(KeyboardInterrupt):
        sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    monkeypatch.undo()
    monkeypatch.setenv(SLACK_ENV, slack.hook_url)
    sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert slack.requests == []
    assert _notifications(engine)[0]["status"] == "unconfirmed"


def _crash(*args, **kwargs):
    raise KeyboardInterrupt  # a kill between the stamp and the answer


def test_the_url_never_reaches_a_log_or_the_ledger(
    engine, settings, segments, slack, outbox, caplog
):
    segments.create("stopped_traffic", _rows(2), COLUMNS)
    caplog.set_level(logging.DEBUG)
    slack.fail_next(500)
    sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    slack.fail_next(400)
    sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
    assert len(slack.requests) == 2
    secret_part = "XXXXXXXXXXXXXXXXXXXXXXXX"
    assert secret_part not in caplog.text
    assert all(secret_part not in str(row) for row in _notifications(engine))


@pytest.mark.parametrize(
    ("block", "line"),
    [
        ({"slack": {"url_env": "x"}}, "segment s: notify.slack.url_env must name an environment"),
        ({"slack": "ONRAMP_X", "when": "later"}, "segment s: notify.when must be entered"),
        ({"webhook": {"url_env": "ONRAMP_X"}}, "segment s: notify.webhook.secret_env is required"),
        ({"slack": "ONRAMP_X", "colour": "red"}, "segment s: notify.colour is not a known key"),
        ({"when": "entered"}, "segment s: notify.slack or notify.webhook is required"),
    ],
)
def test_a_bad_notify_block_is_one_line_naming_segment_and_key(block, line):
    with pytest.raises(NotifySpecError) as err:
        notify_from_meta("s", block)
    assert str(err.value).startswith(line)
    assert "\n" not in str(err.value)


def test_a_missing_show_column_is_one_line(engine, settings, segments, outbox, monkeypatch):
    monkeypatch.setenv(SLACK_ENV, "http://127.0.0.1:9/unused")
    segments.create("stopped_traffic", [member(1)])
    with pytest.raises(Exception, match="notify column 'top_route' is not in"):
        sync_segment(engine, settings, _spec(), AS_OF, provider=outbox)
