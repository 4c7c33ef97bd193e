"""Sequences on hand-made segment tables: steps on their days, the cap defers, holdouts, goals,
re-entry rules, and declarations that fail with one line."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from email_sync.sequences import in_holdout
from email_sync.specs import SpecError, spec_from_meta
from email_sync.sync import sync_segment
from tests.email_sync.conftest import ledger, member, outbox_index

DAY0 = date(2026, 11, 2)
STEPS = [
    {"template": "welcome", "after_days": 0, "kind": "content"},
    {"template": "welcome", "after_days": 2, "kind": "content"},
    {"template": "welcome", "after_days": 4, "kind": "content"},
    {"template": "welcome", "after_days": 6, "kind": "ask"},
]


def seq_spec(name: str = "nurture", **sequence):
    block = {"category": "marketing", "holdout_share": 0, "steps": STEPS, **sequence}
    return spec_from_meta(name, {"sequence": block})


def day_clock(i: int) -> datetime:
    return datetime.combine(DAY0 + timedelta(days=i), time(9), tzinfo=UTC)


def stamp_day(engine, now: datetime) -> None:
    """The frequency cap counts by the rows' timestamps: today's rows get the simulated day."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update email_sync.messages set created_at = :t, "
                "sent_at = case when sent_at is not null then :t end where created_at > :t"
            ),
            {"t": now},
        )
        conn.execute(
            sa.text("update email_sync.messages set sent_at = :t where sent_at > :t"), {"t": now}
        )


def run_days(engine, settings, segments, specs, outbox, days, rows_for_day=None, goal=None):
    """Sync `specs` once per simulated day; `rows_for_day(i)` gives the first spec's rows."""
    specs = specs if isinstance(specs, list) else [specs]
    for i in range(days):
        if rows_for_day is not None:
            segments.replace(specs[0].name, rows_for_day(i))
        if goal is not None:
            segments.replace(goal[0], goal[1](i))
        for spec in specs:
            sync_segment(
                engine, settings, spec, DAY0 + timedelta(days=i), provider=outbox, now=day_clock(i)
            )
        stamp_day(engine, day_clock(i))


def test_steps_go_out_on_their_days_in_order(engine, settings, segments, outbox):
    segments.create("nurture", [member(1)])
    wide = dataclasses.replace(settings, daily_email_cap=5, weekly_email_cap=10)
    run_days(engine, wide, segments, seq_spec(), outbox, 9)

    got = sorted(
        (int(r["step"]), r["status"], r["sent_at"].date()) for r in ledger(engine, "nurture")
    )
    assert got == [
        (k, "sent", DAY0 + timedelta(days=d)) for k, d in ((1, 0), (2, 2), (3, 4), (4, 6))
    ]
    index = outbox_index(settings)
    assert len(index) == 4 and {e["segment"] for e in index} == {"nurture"}
    eml = (settings.outbox_dir / index[-1]["file"]).read_text()
    assert "X-Onramp-Campaign: nurture" in eml and "X-Onramp-Step: 4" in eml


def test_frequency_cap_defers_a_step_to_a_later_day(engine, settings, segments, outbox):
    """Daily cap 1: a higher-priority alert takes day 0, so step 1 goes out on day 1; step 2
    (due on day 2) goes on day 2; nobody gets two emails on one day."""
    segments.create("nurture", [member(1)])
    segments.create("alert", [member(1)])
    alert = spec_from_meta("alert", {"email": {"template": "welcome", "priority": 90}})
    run_days(engine, settings, segments, [alert, seq_spec()], outbox, 4)

    rows = {r["step"]: r for r in ledger(engine, "nurture")}
    assert rows["1"]["status"] == "sent" and rows["1"]["deferrals"] == 1
    assert rows["1"]["sent_at"].date() == DAY0 + timedelta(days=1)
    assert rows["2"]["status"] == "sent" and rows["2"]["deferrals"] == 0
    assert rows["2"]["sent_at"].date() == DAY0 + timedelta(days=2)
    with engine.connect() as conn:
        most = conn.execute(
            sa.text(
                "select max(n) from (select count(*) as n from email_sync.messages "
                "where status = 'sent' group by developer_id, sent_at::date) as d"
            )
        ).scalar_one()
    assert most == 1


def test_holdout_members_get_held_out_rows_and_no_email(engine, settings, segments, outbox):
    rows = [member(n) for n in range(1, 41)]
    segments.create("nurture", rows)
    spec = seq_spec(holdout_share=0.25)
    wide = dataclasses.replace(settings, daily_email_cap=5, weekly_email_cap=10)
    run_days(engine, wide, segments, spec, outbox, 3)

    held = {r["developer_id"] for r in ledger(engine, "nurture") if r["status"] == "held_out"}
    expected = {r["developer_id"] for r in rows if in_holdout("nurture", r["developer_id"], 0.25)}
    assert held == expected and 0 < len(held) < 40
    emailed = {e["to"] for e in outbox_index(settings)}
    assert not emailed & {f"dev{int(d[4:])}@example.com" for d in held}
    # every holdout member moved through step 1 and step 2 (due on day 2), never emailed
    steps = {(r["developer_id"], r["step"]) for r in ledger(engine, "nurture")
             if r["status"] == "held_out"}  # fmt: skip
    assert steps == {(d, s) for d in held for s in ("1", "2")}


def test_goal_segment_ends_the_sequence_the_same_day(engine, settings, segments, outbox):
    segments.create("nurture", [member(1), member(2)])
    segments.create("production", [])
    spec = seq_spec(goal={"enters": "production"})
    spec = dataclasses.replace(
        spec,
        sequence=dataclasses.replace(spec.sequence, goal_relation='"segments"."seg_production"'),
    )
    wide = dataclasses.replace(settings, daily_email_cap=5, weekly_email_cap=10)
    run_days(
        engine,
        wide,
        segments,
        spec,
        outbox,
        7,
        goal=("production", lambda i: [member(1)] if i >= 2 else []),
    )
    steps = {(r["member_key"], r["step"]) for r in ledger(engine, "nurture")}
    assert ("dev-0001", "1") in steps and ("dev-0001", "2") not in steps
    assert ("dev-0002", "4") in steps
    with engine.connect() as conn:
        goal = conn.execute(
            sa.text(
                "select goal_reached_as_of from email_sync.segment_membership "
                "where segment = 'nurture' and member_key = 'dev-0001'"
            )
        ).scalar_one()
    assert goal == DAY0 + timedelta(days=2)


def test_leaving_ends_the_sequence_and_reentry_follows_the_rule(engine, settings, segments, outbox):
    """In on days 0-2, out on days 3-4, back on day 5: with reentry_after_days 3 the sequence
    does not restart (out only 2 days); out again day 6, back day 10: it restarts."""
    inside = {0, 1, 2, 5, 10, 11}
    segments.create("nurture", [member(1)])
    wide = dataclasses.replace(settings, daily_email_cap=5, weekly_email_cap=10)
    spec = seq_spec(reentry_after_days=3)
    run_days(engine, wide, segments, spec, outbox, 12, lambda i: [member(1)] if i in inside else [])
    got = sorted((r["period"], r["step"], r["status"]) for r in ledger(engine, "nurture"))
    assert got == [
        ("entry-1", "1", "sent"),
        ("entry-1", "2", "sent"),
        ("entry-3", "1", "sent"),
    ]


def test_never_reentry_gets_the_sequence_once(engine, settings, segments, outbox):
    segments.create("nurture", [member(1)])
    spec = seq_spec(reentry_after_days="never")
    run_days(engine, settings, segments, spec, outbox, 4, lambda i: [member(1)] if i != 1 else [])
    assert [(r["period"], r["step"]) for r in ledger(engine, "nurture")] == [("once", "1")]


@pytest.mark.parametrize(
    ("sequence", "message"),
    [
        ({"steps": STEPS, "colour": "red"}, "segment s: sequence.colour: unknown key"),
        (
            {"steps": [{"template": "welcome", "after_days": 0, "kind": "ask"}]},
            "segment s: sequence.steps[1].kind: an ask after 0 content step(s)",
        ),
        (
            {"steps": [{"template": "welcome", "when": 0}]},
            "segment s: sequence.steps[1].when: unknown key",
        ),
        ({"steps": STEPS, "goal": {"reaches": "x"}}, "segment s: sequence.goal.reaches"),
        ({"steps": STEPS, "reentry_after_days": "sometimes"}, "sequence.reentry_after_days"),
        ({"steps": STEPS, "holdout_share": 2}, "segment s: sequence.holdout_share"),
    ],
)
def test_bad_declaration_is_one_line_naming_segment_and_key(sequence, message):
    with pytest.raises(SpecError) as exc:
        spec_from_meta("s", {"sequence": sequence})
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_missing_template_fails_when_the_manifest_is_read(tmp_path):
    import json

    from email_sync.specs import load_segment_specs

    steps = [{"template": "no_such_template", "after_days": 0}]
    node = {
        "resource_type": "model",
        "name": "seg_s",
        "config": {"meta": {"onramp": {"sequence": {"steps": steps}}}},
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": {"model.s": node}}))
    with pytest.raises(SpecError, match=r"^segment s: sequence.steps\[1\].template: "):
        load_segment_specs(path)


def test_readme_campaign_example_is_a_valid_declaration():
    """The worked example in the README ("Write your own campaign") parses as it is written."""
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Write your own campaign") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    block = re.sub(r"- \*\w+", "- {name: x}", block)  # the column aliases live in the real file
    (model,) = yaml.safe_load(block)
    spec = spec_from_meta(model["name"][4:], model["config"]["meta"]["onramp"])
    assert spec.sequence is not None
    assert [s.kind for s in spec.sequence.steps] == ["content", "ask"]
    assert spec.sequence.reentry_after_days is None and spec.sequence.holdout_share == 0.1


def test_a_developer_already_in_the_goal_segment_gets_the_whole_run(
    engine, settings, segments, outbox
):
    """`enters` is a change: on a paid plan from the start, the production campaign runs on;
    upgrading during the run reaches the goal."""
    segments.create("production", [member(1), member(2)])
    segments.create("paid_plan", [member(1)])
    spec = seq_spec("production", goal={"enters": "paid_plan"})
    spec = dataclasses.replace(
        spec,
        sequence=dataclasses.replace(spec.sequence, goal_relation='"segments"."seg_paid_plan"'),
    )
    wide = dataclasses.replace(settings, daily_email_cap=5, weekly_email_cap=10)
    run_days(
        engine,
        wide,
        segments,
        spec,
        outbox,
        8,
        goal=("paid_plan", lambda i: [member(1)] + ([member(2)] if i >= 3 else [])),
    )
    steps = sorted((r["member_key"], r["step"]) for r in ledger(engine, "production"))
    assert steps == [("dev-0001", s) for s in "1234"] + [("dev-0002", "1"), ("dev-0002", "2")]
