"""The lift marts against a hand computation on campaign history whose true effect is known.

lift_known_effect: treated members reach the goal with probability 0.6, held-out ones with 0.3
(random draws); lift_no_effect: exactly 40 % of each arm does. The expected shares, difference
and Newcombe interval are computed here from the generated rows, independently of the SQL.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.report.conftest import AS_OF, WINDOW_DAYS, Entry, ReportWarehouse

Z95 = 1.959963984540054


def wilson(successes: int, trials: int) -> tuple[float, float]:
    p = successes / trials
    denominator = 1 + Z95**2 / trials
    centre = (p + Z95**2 / (2 * trials)) / denominator
    half = Z95 / denominator * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2))
    return centre - half, centre + half


def newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float, float]:
    """Difference p1 - p2 and Newcombe's hybrid score 95 % interval (method 10)."""
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson(x1, n1), wilson(x2, n2)
    d = p1 - p2
    return (
        d,
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def test_hand_computation_matches_newcombe_1998():
    """The test's own arithmetic reproduces the published table (method 10)."""
    for (x1, n1, x2, n2), (lower, upper) in {
        (56, 70, 48, 80): (0.0524, 0.3339),
        (9, 10, 3, 10): (0.1705, 0.8090),
        (5, 56, 0, 29): (-0.0381, 0.1926),
        (0, 10, 0, 20): (-0.1611, 0.2775),
        (10, 10, 0, 20): (0.6791, 1.0000),
    }.items():
        _, lo, hi = newcombe(x1, n1, x2, n2)
        assert (round(lo, 4), round(hi, 4)) == (lower, upper)


def _closed(entries: list[Entry], campaign: str) -> dict[str, tuple[int, int, list[int]]]:
    """arm -> (members, reached within the window, days to goal of those) for closed windows."""
    out: dict[str, list] = defaultdict(lambda: [0, 0, []])
    for e in entries:
        if e.campaign != campaign or e.entered + timedelta(days=WINDOW_DAYS) > AS_OF:
            continue
        row = out[e.arm]
        row[0] += 1
        if e.days_to_goal is not None and e.days_to_goal <= WINDOW_DAYS:
            row[1] += 1
            row[2].append(e.days_to_goal)
    return {arm: (n, x, days) for arm, (n, x, days) in out.items()}


def _median(values: list[int]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _lift_row(engine: sa.Engine, campaign: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select * from marts.fct_campaign_lift where campaign = :c"), {"c": campaign}
        ).mappings().one()  # fmt: skip
    return dict(row)


@pytest.mark.parametrize("campaign", ["lift_known_effect", "lift_no_effect"])
def test_lift_mart_agrees_with_hand_computation(
    report_warehouse: ReportWarehouse, engine: sa.Engine, campaign: str
):
    truth = _closed(report_warehouse.lift.entries, campaign)
    (n1, x1, days1), (n2, x2, days2) = truth["treated"], truth["held_out"]
    d, lower, upper = newcombe(x1, n1, x2, n2)
    row = _lift_row(engine, campaign)
    assert (row["treated_members"], row["held_out_members"]) == (n1, n2) == (300, 300)
    assert (row["treated_reached_goal"], row["held_out_reached_goal"]) == (x1, x2)
    assert float(row["treated_share"]) == pytest.approx(x1 / n1, abs=1e-6)
    assert float(row["held_out_share"]) == pytest.approx(x2 / n2, abs=1e-6)
    assert float(row["share_difference"]) == pytest.approx(d, abs=1e-6)
    assert float(row["difference_lower_95"]) == pytest.approx(lower, abs=1e-6)
    assert float(row["difference_upper_95"]) == pytest.approx(upper, abs=1e-6)
    assert row["treated_median_days_to_goal"] == pytest.approx(_median(days1))
    assert row["held_out_median_days_to_goal"] == pytest.approx(_median(days2))
    assert row["is_too_small"] is False
    assert row["members_in_window"] == 12  # 6 per arm entered less than 14 days ago
    if campaign == "lift_known_effect":
        # treated reach the goal more often by construction: the interval excludes zero
        assert lower > 0
        assert lower < 0.6 - 0.3 < upper
    else:
        assert d == 0
        assert lower < 0 < upper


def test_weekly_lift_adds_up_to_the_campaign(report_warehouse: ReportWarehouse, engine):
    with engine.connect() as conn:
        weekly = conn.execute(
            sa.text(
                "select cohort_week, treated_members, held_out_members, treated_reached_goal,"
                " is_too_small, difference_lower_95 from marts.fct_campaign_lift_weekly"
                " where campaign = 'lift_known_effect' order by cohort_week"
            )
        ).all()
    assert sum(r.treated_members for r in weekly) == 300
    assert sum(r.held_out_members for r in weekly) == 300
    truth = _closed(report_warehouse.lift.entries, "lift_known_effect")
    assert sum(r.treated_reached_goal for r in weekly) == truth["treated"][1]
    assert all(r.cohort_week.weekday() == 0 for r in weekly)
    # a week with fewer than 30 members in an arm is flagged
    assert all(r.is_too_small == (min(r.treated_members, r.held_out_members) < 30) for r in weekly)


def test_enters_goal_counts_from_entry(report_warehouse: ReportWarehouse, engine: sa.Engine):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select member_key, arm, days_to_goal, reached_goal_in_window"
                " from marts.fct_campaign_goal_outcomes where campaign = 'lift_enters_goal'"
                " order by member_key"
            )
        ).all()
    assert [(r.member_key, r.arm, r.days_to_goal, r.reached_goal_in_window) for r in rows] == [
        ("dev_enters_0", "treated", 5, True),  # entered the goal segment on day 5
        ("dev_enters_1", "treated", 0, True),  # already in it on entry
        ("dev_enters_2", "treated", None, False),  # had left it before entry
        ("dev_enters_3", "held_out", 15, False),  # after the 14-day window
        ("dev_enters_4", "held_out", None, False),
    ]


def test_arms_are_intent_to_treat(report_warehouse: ReportWarehouse, engine: sa.Engine):
    """A treated member whose only ledger row is suppressed stays treated, not emailed."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "select arm, was_emailed, emails_sent from marts.fct_campaign_goal_outcomes"
                " where member_key = 'lift_known_effect:treated:10'"
            )
        ).one()
    assert tuple(row) == ("treated", False, 0)


def test_milestones_by_exposure_come_from_dim_developers(
    report_warehouse: ReportWarehouse, engine: sa.Engine
):
    """Per exposure: the sample developers' TTFHW and production counts, from dim_developers."""
    from tests.report.conftest import EXPOSURE_STATUSES

    members = [e for e in report_warehouse.lift.entries if e.campaign == "lift_exposure"]
    with engine.connect() as conn:
        mart = {
            r.exposure: r
            for r in conn.execute(
                sa.text(
                    "select * from marts.fct_campaign_exposure_milestones"
                    " where campaign = 'lift_exposure'"
                )
            )
        }
        dim = {
            r.developer_id: r
            for r in conn.execute(
                sa.text(
                    "select developer_id, ttfhw_seconds, signup_date, first_production_date"
                    " from marts.dim_developers where developer_id in :ids"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": [e.developer_id for e in members]},
            )
        }
    assert set(mart) == set(EXPOSURE_STATUSES)
    for i, exposure in enumerate(EXPOSURE_STATUSES):
        group = [dim[e.developer_id] for e in members[3 * i : 3 * i + 3]]
        row = mart[exposure]
        assert row.developers == 3
        hours = [d.ttfhw_seconds / 3600 for d in group if d.ttfhw_seconds is not None]
        assert row.developers_with_first_call == len(hours)
        if hours:
            assert row.median_ttfhw_hours == pytest.approx(_median(hours))
        else:
            assert row.median_ttfhw_hours is None
        days = [(d.first_production_date - d.signup_date).days for d in group
                if d.first_production_date is not None]  # fmt: skip
        assert row.developers_in_production == len(days)
