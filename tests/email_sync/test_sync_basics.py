"""First sync, no-change sync, leaving, re-entry, dry run and the sync_runs record (outbox)."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from email_sync.sync import sync_segment
from tests.email_sync.conftest import ledger, member, outbox_index, spec, statuses

AS_OF = date(2026, 11, 26)
WELCOME = {"email": {"template": "welcome", "kind": "marketing", "priority": 40}}


def test_first_sync_sends_each_entered_member_once(engine, settings, segments, outbox):
    segments.create("new_signups", [member(1), member(2, role="product"), member(3)])

    result = sync_segment(engine, settings, spec("new_signups", **WELCOME), AS_OF, provider=outbox)

    assert (result.members, result.entered, result.exited, result.sent) == (3, 3, 0, 3)
    index = outbox_index(settings)
    assert sorted(row["to"] for row in index) == [
        "dev1@example.com",
        "dev2@example.com",
        "dev3@example.com",
    ]
    eml = (settings.outbox_dir / f"{index[0]['message_id']}.eml").read_text()
    assert "Unsubscribe" in eml and "X-Onramp-Message-Id" in eml
    product = next(r for r in index if r["to"] == "dev2@example.com")
    assert "here's where to start" in product["subject"]
    assert set(statuses(engine).values()) == {"sent"}
    with engine.connect() as conn:
        run = conn.execute(sa.text("select * from email_sync.sync_runs")).mappings().one()
        active = conn.execute(
            sa.text(
                "select count(*) from email_sync.segment_membership "
                "where segment = 'new_signups' and exited_at is null"
            )
        ).scalar()
    assert (run["status"], run["entered"], run["sent"], run["members"]) == ("ok", 3, 3, 3)
    assert active == 3
    assert result.sample_markdown.startswith("**Subject:** Welcome aboard")
    assert "dev1@example.com" not in result.sample_markdown
    assert len(result.sample_member_hashes) == 3


def test_no_change_sync_sends_nothing(engine, settings, segments, outbox):
    segments.create("new_signups", [member(1), member(2)])
    s = spec("new_signups", **WELCOME)
    sync_segment(engine, settings, s, AS_OF, provider=outbox)
    calls = outbox.calls

    again = sync_segment(engine, settings, s, AS_OF, provider=outbox)

    assert (again.entered, again.exited, again.sent) == (0, 0, 0)
    assert outbox.calls == calls
    assert len(outbox_index(settings)) == 2


def test_members_who_leave_are_marked_exited(engine, settings, segments, outbox):
    segments.create("new_signups", [member(1), member(2), member(3)])
    s = spec("new_signups", **WELCOME)
    sync_segment(engine, settings, s, AS_OF, provider=outbox)
    segments.replace("new_signups", [member(1)])

    result = sync_segment(engine, settings, s, AS_OF, provider=outbox)

    assert (result.members, result.entered, result.exited, result.sent) == (1, 0, 2, 0)
    with engine.connect() as conn:
        exited = (
            conn.execute(
                sa.text(
                    "select member_key from email_sync.segment_membership "
                    "where exited_at is not null order by 1"
                )
            )
            .scalars()
            .all()
        )
    assert exited == ["dev-0002", "dev-0003"]


def test_reentry_emails_again_only_when_meta_allows(engine, settings, segments, outbox):
    segments.create("again", [member(1)])
    segments.create("once", [member(2)])
    again = spec("again", reentry=True, **WELCOME)
    once = spec("once", reentry=False, **WELCOME)
    for s in (again, once):
        sync_segment(engine, settings, s, AS_OF, provider=outbox)
    segments.replace("again", [])
    segments.replace("once", [])
    for s in (again, once):
        sync_segment(engine, settings, s, AS_OF, provider=outbox)
    segments.replace("again", [member(1)])
    segments.replace("once", [member(2)])
    settings_no_cap = settings.__class__(**{**settings.__dict__, "daily_email_cap": 10})

    r_again = sync_segment(engine, settings_no_cap, again, AS_OF, provider=outbox)
    r_once = sync_segment(engine, settings_no_cap, once, AS_OF, provider=outbox)

    assert (r_again.entered, r_again.sent) == (1, 1)
    assert (r_once.entered, r_once.sent, r_once.skipped) == (1, 0, 1)
    assert statuses(engine, "again") == {"dev-0001/entry-1": "sent", "dev-0001/entry-2": "sent"}
    assert statuses(engine, "once") == {"dev-0002/once": "sent"}
    assert [r["to"] for r in outbox_index(settings)].count("dev1@example.com") == 2


def _snapshot(engine):
    with engine.connect() as conn:
        tables = (
            conn.execute(
                sa.text(
                    "select table_name from information_schema.tables "
                    "where table_schema = 'email_sync' order by 1"
                )
            )
            .scalars()
            .all()
        )
        return {
            t: sorted(map(str, conn.execute(sa.text(f"select * from email_sync.{t}")).all()))
            for t in tables
        }


def test_dry_run_writes_nothing_anywhere(engine, settings, segments, sendgrid_server, sg_provider):
    segments.create("new_signups", [member(1), member(2, marketing_opt_in=False)])
    segments.create("listed", [member(3)], {"stage": "text"})
    s = spec("new_signups", **WELCOME)
    sync_segment(engine, settings, s, AS_OF, provider=sg_provider)
    segments.replace("new_signups", [member(2, marketing_opt_in=False), member(4), member(5)])
    before = _snapshot(engine)
    sendgrid_server.reset()

    result = sync_segment(engine, settings, s, AS_OF, dry_run=True)
    listed = sync_segment(
        engine,
        settings,
        spec("listed", list="Stage: sandbox", custom_fields=["stage"]),
        AS_OF,
        dry_run=True,
    )

    assert (result.dry_run, result.entered, result.exited, result.sent) == (True, 2, 1, 2)
    assert result.sample_markdown.startswith("**Subject:**")
    assert (listed.entered, listed.list_added) == (1, 1)
    assert _snapshot(engine) == before
    assert sendgrid_server.requests == []
    assert not settings.outbox_dir.exists()


def test_first_dry_run_on_a_fresh_warehouse_creates_no_schema(engine, settings, segments):
    with engine.begin() as conn:
        conn.execute(sa.text("drop schema email_sync cascade"))
    segments.create("new_signups", [member(1)])

    result = sync_segment(engine, settings, spec("new_signups", **WELCOME), AS_OF, dry_run=True)

    assert (result.entered, result.sent) == (1, 1)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select to_regnamespace('email_sync')")).scalar() is None
    assert not settings.outbox_dir.exists()
    assert ledger  # imported helper used elsewhere


def test_segment_table_breaking_the_contract_is_one_line(engine, settings, segments, outbox):
    from email_sync.sync import SegmentMissing

    with engine.begin() as conn:
        conn.execute(sa.text("create schema if not exists segments"))
        conn.execute(sa.text("create table segments.seg_broken (member_key text, email text)"))

    with pytest.raises(SegmentMissing) as exc:
        sync_segment(engine, settings, spec("broken", **WELCOME), AS_OF, provider=outbox)

    assert str(exc.value) == (
        "segment table segments.seg_broken lacks column(s) developer_id, marketing_opt_in "
        "(every seg_ table needs member_key, developer_id, email, marketing_opt_in)"
    )
    with pytest.raises(SegmentMissing, match="^segment table segments.seg_nope not found: run"):
        sync_segment(engine, settings, spec("nope", **WELCOME), AS_OF, provider=outbox)


def test_unknown_template_is_one_line(engine, settings, segments, outbox):
    from onramp.errors import OnrampError

    segments.create("new_signups", [member(1)])
    with pytest.raises(OnrampError, match=r"^template nope\.subject\.j2 not found in "):
        s = spec("new_signups", email={"template": "nope"})
        sync_segment(engine, settings, s, AS_OF, provider=outbox)


def test_dry_run_list_counts_match_the_real_run(engine, settings, segments, outbox):
    """A member without marketing consent is never added to a list, in a dry run too."""
    segments.create("listed", [member(3), member(4, marketing_opt_in=False)])
    s = spec("listed", list="Stage: sandbox")

    dry = sync_segment(engine, settings, s, AS_OF, dry_run=True)
    real = sync_segment(engine, settings, s, AS_OF, provider=outbox)

    assert (dry.list_added, dry.list_skipped) == (1, 1)
    assert (real.list_added, real.list_skipped) == (1, 1)


def test_a_caller_without_an_address_enters_when_its_record_arrives(
    engine, settings, segments, outbox
):
    """An API caller known only from its events sits in the segment table with no address: not a
    member yet; once a developer record brings the address it enters and gets its email."""
    caller = member(9, email=None, name=None, company_name=None, marketing_opt_in=False)
    segments.create("new_signups", [member(1), caller])
    first = sync_segment(engine, settings, spec("new_signups", **WELCOME), AS_OF, provider=outbox)
    assert (first.members, first.entered, first.sent) == (1, 1, 1)

    segments.replace("new_signups", [member(1), member(9)])  # the user export arrived
    second = sync_segment(engine, settings, spec("new_signups", **WELCOME), AS_OF, provider=outbox)
    assert (second.members, second.entered, second.sent) == (2, 1, 1)
    assert sorted(row["to"] for row in outbox_index(settings)) == [
        "dev1@example.com",
        "dev9@example.com",
    ]
