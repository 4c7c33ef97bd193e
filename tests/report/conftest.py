"""One warehouse per session for the report tests: sample data, synthetic campaign history with a
known effect, and one dbt build (full refresh, models and their tests) as of AS_OF.

The campaign history is written straight into email_sync.segment_membership and
email_sync.messages (the ledger), as the sync would leave it, so the lift marts can be checked
against a hand computation without replaying days of syncs.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

AS_OF = date(2026, 11, 26)
WINDOW_DAYS = 14

# campaign -> declaration, as a segment's sequence block would say it (var lift_campaigns)
CAMPAIGNS = {
    "lift_known_effect": {"goal": {"leaves_segment": True}, "holdout_share": 0.5},
    "lift_no_effect": {"goal": {"leaves_segment": True}, "holdout_share": 0.5},
    "lift_enters_goal": {"goal": {"enters": "lift_target"}, "holdout_share": 0.5},
    "lift_exposure": {"goal": {"leaves_segment": True}, "holdout_share": 0.5},
}
EXPOSURE_STATUSES = {"emailed": ["sent"], "held_out": ["held_out"], "not_emailed": ["suppressed"]}


@dataclass
class Entry:
    """One campaign member as the test generated it: the truth the marts must reproduce."""

    campaign: str
    member_key: str
    developer_id: str
    arm: str  # treated | held_out
    entered: date
    exited: date | None
    statuses: list[str] = field(default_factory=lambda: ["sent"])

    @property
    def days_to_goal(self) -> int | None:
        return (self.exited - self.entered).days if self.exited else None


@dataclass
class LiftData:
    entries: list[Entry]
    target_memberships: list[tuple[str, str, date, date | None]]  # member, developer, in, out


def _leaves_segment_entries(
    campaign: str, rng: random.Random, p_treated: float | None, p_held_out: float | None
) -> list[Entry]:
    """300 members per arm over three closed cohort weeks, plus 6 whose window is still open.

    With p given, each member reaches the goal with that probability (a random draw); with None,
    exactly 40 % of each arm does (no effect, by construction). Goal days are 0..14; a member who
    does not reach it leaves after the window (day 15..30) or stays.
    """
    entries = []
    for arm, p in (("treated", p_treated), ("held_out", p_held_out)):
        for i in range(306):
            is_open = i >= 300
            entered = AS_OF - timedelta(days=3 + i % 5 if is_open else 16 + i % 21)
            reached = (rng.random() < p) if p is not None else (i % 5 < 2)
            if reached:
                exited = entered + timedelta(days=rng.randint(0, WINDOW_DAYS))
            elif rng.random() < 0.5:
                exited = entered + timedelta(days=rng.randint(WINDOW_DAYS + 1, 30))
            else:
                exited = None
            if exited is not None and exited > AS_OF:
                exited = None  # not known as of AS_OF
            statuses = ["held_out"] if arm == "held_out" else ["sent", "sent"]
            if arm == "treated" and i % 10 == 0:
                statuses = ["suppressed"]  # assigned to the emails, never sent: still treated
            entries.append(
                Entry(
                    campaign,
                    f"{campaign}:{arm}:{i}",
                    f"dev_{campaign}_{arm}_{i}",
                    arm,
                    entered,
                    exited,
                    statuses,
                )  # fmt: skip
            )
    return entries


def exposure_entries(developer_ids: list[str]) -> list[Entry]:
    """Sample developers (real milestones in dim_developers), three per exposure."""
    entered = AS_OF - timedelta(days=20)
    entries = []
    for i, developer in enumerate(developer_ids[:9]):
        exposure = list(EXPOSURE_STATUSES)[i // 3]
        arm = "held_out" if exposure == "held_out" else "treated"
        entries.append(Entry("lift_exposure", developer, developer, arm, entered, None,
                             EXPOSURE_STATUSES[exposure]))  # fmt: skip
    return entries


def generate_lift_data(seed: int = 13) -> LiftData:
    rng = random.Random(seed)
    entries = _leaves_segment_entries("lift_known_effect", rng, 0.6, 0.3)
    entries += _leaves_segment_entries("lift_no_effect", rng, None, None)
    # enters: the goal is entering segment lift_target (membership of another segment)
    entered = AS_OF - timedelta(days=20)
    targets = []
    for i, (arm, target_in, target_out) in enumerate(
        [
            ("treated", entered + timedelta(days=5), None),  # reached on day 5
            ("treated", entered - timedelta(days=3), None),  # already there: day 0
            ("treated", entered - timedelta(days=9), entered - timedelta(days=2)),  # left before
            ("held_out", entered + timedelta(days=15), None),  # after the window
            ("held_out", None, None),  # never
        ]
    ):
        developer = f"dev_enters_{i}"
        statuses = ["held_out"] if arm == "held_out" else ["sent"]
        entries.append(
            Entry("lift_enters_goal", developer, developer, arm, entered, None, statuses)
        )
        if target_in is not None:
            targets.append((developer, developer, target_in, target_out))
    return LiftData(entries, targets)


def write_lift_data(engine: sa.Engine, data: LiftData) -> None:
    """Membership and ledger rows for every entry, as email_sync would have written them."""
    from email_sync.schema import ensure_email_schema

    def ts(day: date | None) -> str | None:
        return f"{day}T06:00:00+00:00" if day else None

    memberships = [
        {"segment": e.campaign, "member_key": e.member_key, "developer_id": e.developer_id,
         "entered_at": ts(e.entered), "exited_at": ts(e.exited), "entered_as_of": e.entered,
         "exited_as_of": e.exited}
        for e in data.entries
    ] + [
        {"segment": "lift_target", "member_key": m, "developer_id": d, "entered_at": ts(i),
         "exited_at": ts(o), "entered_as_of": i, "exited_as_of": o}
        for m, d, i, o in data.target_memberships
    ]  # fmt: skip
    messages = [
        {"message_id": f"{e.member_key}:{step}", "segment": e.campaign, "step": str(step),
         "member_key": e.member_key, "period": "1", "developer_id": e.developer_id,
         "status": status, "created_at": ts(e.entered + timedelta(days=3 * (step - 1))),
         "sent_at": ts(e.entered) if status == "sent" else None}
        for e in data.entries
        for step, status in enumerate(e.statuses, start=1)
    ]  # fmt: skip
    with engine.begin() as conn:
        ensure_email_schema(conn)
        conn.execute(sa.text("delete from email_sync.messages where segment like 'lift_%'"))
        conn.execute(
            sa.text("delete from email_sync.segment_membership where segment like 'lift_%'")
        )
        conn.execute(
            sa.text(
                "insert into email_sync.segment_membership (segment, member_key, developer_id,"
                " entered_at, exited_at, entered_as_of, exited_as_of) values (:segment,"
                " :member_key, :developer_id, :entered_at, :exited_at, :entered_as_of,"
                " :exited_as_of)"
            ),
            memberships,
        )
        conn.execute(
            sa.text(
                "insert into email_sync.messages (message_id, segment, step, member_key, period,"
                " developer_id, status, created_at, sent_at) values (:message_id, :segment,"
                " :step, :member_key, :period, :developer_id, :status, :created_at, :sent_at)"
            ),
            messages,
        )


@dataclass
class ReportWarehouse:
    as_of: date
    lift: LiftData
    sample_dir: Path


@pytest.fixture(scope="session")
def report_warehouse(
    engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> ReportWarehouse:
    """Sample data loaded, campaign history written, every model built once (dbt build)."""
    from ingest.loader import load_manifest_dir
    from ingest.schema import ensure_raw_schema
    from onramp.dbt import run_dbt
    from sample_data import generate

    work = tmp_path_factory.mktemp("dbt")
    os.environ["DBT_TARGET_PATH"] = str(work / "target")
    os.environ["DBT_LOG_PATH"] = str(work / "logs")

    sample_dir = tmp_path_factory.mktemp("sample")
    generate(sample_dir, developers=60, days=35, seed=7, as_of=AS_OF)
    ensure_raw_schema(engine)
    load_manifest_dir(engine, sample_dir)
    data = generate_lift_data()
    with engine.connect() as conn:
        developers = conn.execute(
            sa.text("select distinct developer_id from raw.developers order by 1 limit 9")
        ).scalars()
        data.entries += exposure_entries(list(developers))
    write_lift_data(engine, data)
    dbt_vars = {"lift_campaigns": CAMPAIGNS, "lift_goal_window_days": WINDOW_DAYS}
    run_dbt(["build", "--full-refresh", "--vars", json.dumps(dbt_vars)], as_of=AS_OF)
    return ReportWarehouse(as_of=AS_OF, lift=data, sample_dir=sample_dir)
