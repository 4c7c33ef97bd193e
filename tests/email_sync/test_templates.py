"""Every template of the segment plan renders with the columns its segment carries."""

from __future__ import annotations

from datetime import date

import pytest

from email_sync.render import Renderer
from tests.email_sync.conftest import member

PLAN = {
    "welcome": {"plan": "free", "stage": "not_integrated"},
    "signup_no_calls": {"days_since_signup": 5},
    "stopped_traffic": {"top_route": "/v1/orders/{id}", "last_call_date": "2026-11-15"},
    "unused_feature": {
        "route": "/v1/webhooks",
        "feature_name": "Webhooks",
        "docs_url": "https://docs.example.com/webhooks",
    },
    "quota_warning": {"month_start": "2026-11-01", "monthly_quota": 30000, "quota_used_pct": 85.3},
    "quota_exceeded": {"month_start": "2026-11-01", "monthly_quota": 30000, "quota_used_pct": 131},
    "rate_limited": {"events_429": 57},
    "incident_affected": {"incident_id": "inc-42", "incident_title": "Search returned 5xx"},
}
SUBJECTS = {
    "welcome": "Welcome aboard, Ada: your first API call is 5 minutes away",
    "signup_no_calls": "Ada, your API key hasn't made a call yet: here's the 5-minute path",
    "stopped_traffic": "Ada, we noticed your calls to /v1/orders/{id} stopped",
    "unused_feature": "Ada, have you tried Webhooks?",
    "quota_warning": "You've used 85% of this month's API quota",
    "quota_exceeded": "Action needed: your API quota for this month is used up",
    "rate_limited": "Your API calls were rate limited 57 times",
    "incident_affected": "Incident report: Search returned 5xx",
}


@pytest.mark.parametrize("template", sorted(PLAN))
def test_plan_template_renders_with_one_call_to_action_and_unsubscribe(template):
    row = member(1, name="Ada <b>Lovelace</b>", company_name="R&D Ltd", **PLAN[template])
    out = Renderer().render(template, row, "m-1", "seg")

    assert out.subject == SUBJECTS[template]
    assert "Hi Ada," in out.text  # first name only
    assert "R&D Ltd" not in out.html  # member data is escaped in HTML
    assert out.html.count('style="background:#2563eb') == 1  # exactly one call to action
    assert "Unsubscribe" in out.html and "unsubscribe" in out.text.lower()
    assert "mailto:onramp@example.com?subject=unsubscribe%20m-1" in out.text


@pytest.mark.parametrize(
    ("role", "cta"),
    [
        ("engineering", "https://docs.example.com/quickstart"),
        ("product", "https://docs.example.com/use-cases"),
        ("sales", "https://docs.example.com/pricing"),
        ("support", "https://docs.example.com/troubleshooting"),
        (None, "https://docs.example.com/quickstart"),
    ],
)
def test_welcome_has_one_call_to_action_per_role(role, cta):
    out = Renderer().render("welcome", member(1, role=role), "m", "new_signups")
    links = [line for line in out.text.splitlines() if "https://docs.example.com" in line]
    assert len(links) == 1 and links[0].endswith(cta)
    assert f'href="{cta}"' in out.html


def test_html_escapes_member_columns():
    row = member(1, top_route="/v1/<script>alert(1)</script>", last_call_date=date(2026, 11, 1))
    out = Renderer().render("stopped_traffic", row, "m", "stopped_traffic")
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "<script>" in out.text  # plain text is not HTML-escaped
