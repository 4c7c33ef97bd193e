"""Every template of the segment plan renders with the columns its segment carries."""

from __future__ import annotations

import re
from datetime import date

import pytest

from email_sync.links import ROLES
from email_sync.preview import SAMPLE_MEMBER
from email_sync.render import TEMPLATES_DIR, Renderer
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
    ("role", "landing"),
    [
        ("engineering", "https://example.com/start/engineering"),
        ("product", "https://example.com/start/product"),
        ("sales", "https://example.com/start/sales"),
        ("support", "https://example.com/start/support"),
        ("customer_success", "https://example.com/start/customer-success"),
        (None, "https://example.com/start"),
        ("astronaut", "https://example.com/start"),
    ],
)
def test_welcome_has_one_call_to_action_to_the_role_landing_page(role, landing):
    out = Renderer().render("welcome", member(1, role=role), "m", "new_signups")
    links = [line for line in out.text.splitlines() if "https://" in line]
    assert len(links) == 1 and f"{landing}?utm_source=onramp" in links[0]
    assert f'href="{landing}?utm_source=onramp&amp;utm_medium=email' in out.html


RENDERER = Renderer()  # one environment: templates are compiled once for the whole matrix
TEMPLATES = sorted(p.name[: -len(".subject.j2")] for p in TEMPLATES_DIR.glob("*.subject.j2"))


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("role", ROLES)
def test_every_template_renders_for_every_role_with_strict_undefined(template, role):
    """A missing variable raises (StrictUndefined) here, in CI, never at send time."""
    row = {**SAMPLE_MEMBER, "role": None if role == "unknown" else role}
    out = RENDERER.render(template, row, "m-1", "campaign_x", step=2)

    assert out.subject and "{{" not in out.subject + out.html + out.text
    assert out.html.count('style="background:#2563eb') == 1  # one call to action
    assert out.text.startswith("Hi Ada,")
    assert "Unsubscribe" in out.html and "unsubscribe" in out.text.lower()
    hrefs = re.findall(r'href="(https?://[^"]+)"', out.html)
    assert hrefs and all(
        "utm_source=onramp&amp;utm_medium=email&amp;utm_campaign=campaign_x&amp;utm_content=step-2"
        in h
        for h in hrefs
    )
    assert "docs.example.com" not in out.html or "utm_source" in out.html
    for url in re.findall(r"https?://\S+", out.text):
        assert "utm_campaign=campaign_x&utm_content=step-2" in url, url


def test_plain_text_of_a_long_email_reads_as_paragraphs():
    out = Renderer().render("ni_first_call_errors", SAMPLE_MEMBER, "m", "stage_not_integrated")
    assert "\n\n\n" not in out.text
    assert "  * 401:" in out.text
    assert "<p" not in out.text and "<li" not in out.text


def test_every_link_comes_from_the_one_links_file(tmp_path):
    """Changing `site` in links.yml moves every landing page: no address is written elsewhere."""
    import shutil

    shutil.copytree(TEMPLATES_DIR, tmp_path / "t")
    config = tmp_path / "t" / "links.yml"
    config.write_text(config.read_text().replace("example.com", "acme.test"))
    out = Renderer(tmp_path / "t").render("welcome", {**SAMPLE_MEMBER, "role": "sales"}, "m", "s")
    assert "https://acme.test/start/sales?utm_source=onramp" in out.text
    alert = Renderer(tmp_path / "t").render("stopped_traffic", SAMPLE_MEMBER, "m", "s")
    assert "https://dashboard.acme.test/usage?utm_source=onramp" in alert.text
    for template in TEMPLATES:
        source = "".join(
            p.read_text() for p in TEMPLATES_DIR.glob(f"{template}.*.j2") if "subject" not in p.name
        )
        assert "https://" not in source, template


def test_html_escapes_member_columns():
    row = member(1, top_route="/v1/<script>alert(1)</script>", last_call_date=date(2026, 11, 1))
    out = Renderer().render("stopped_traffic", row, "m", "stopped_traffic")
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "<script>" in out.text  # plain text is not HTML-escaped
