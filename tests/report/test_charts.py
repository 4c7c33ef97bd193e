"""Charts without a warehouse: every chart renders at its fixed size, and says why when empty."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from PIL import Image

from report.charts import CHARTS, SIZE_PX, render_png
from report.data import ReportData


def test_every_chart_renders_and_explains_an_empty_warehouse():
    data = ReportData(as_of=date(2026, 11, 26))  # no rows anywhere, no lift or engagement mart
    notes = {}
    for spec in CHARTS:
        png, note = render_png(spec, data)
        assert Image.open(io.BytesIO(png)).size == SIZE_PX
        notes[spec.name] = note
    assert notes == {
        "signup_funnel": "no sign-ups in the last weeks",
        "stage_counts": "no stage history yet",
        "stage_transitions": "no stage transitions yet",
        "ttfhw": "no developer has made a successful call yet",
        "campaign_lift": "the lift marts are not built yet (onramp build)",
        "engagement": "no engagement events yet",
    }


def test_lift_chart_skips_campaigns_without_a_held_out_member():
    lift = [
        {"campaign": "no_holdout_yet", "goal_type": "leaves_segment", "goal_segment": None,
         "treated_members": 12, "held_out_members": 0, "treated_share": Decimal("0.5"),
         "held_out_share": None, "share_difference": None, "difference_lower_95": None,
         "difference_upper_95": None, "treated_median_days_to_goal": 2.0,
         "held_out_median_days_to_goal": None, "is_too_small": True},
    ]  # fmt: skip
    spec = next(s for s in CHARTS if s.name == "campaign_lift")
    _, note = render_png(spec, ReportData(as_of=date(2026, 11, 26), lift=lift))
    assert note == "no campaign with a holdout and a closed goal window yet"
