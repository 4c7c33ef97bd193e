"""Pump meta read from the manifest (one-line errors for bad meta) and the demo's CRM step."""

from __future__ import annotations

import pytest

from crm_sync.specs import SpecError, load_pump_specs, spec_from_meta
from tests.support.hubspot_server import HubSpotServer


def test_pumps_declared_in_yaml(fresh):
    specs = {s.object_type: s for s in fresh.specs}
    assert [s.object_type for s in fresh.specs] == ["companies", "contacts"]  # push order
    contacts = specs["contacts"]
    assert contacts.id_property == "email" and contacts.associate_object == "companies"
    names = {p.name: p for p in contacts.properties}
    assert {
        "onramp_api_events_7d",
        "onramp_api_events_30d",
        "onramp_funnel_stage",
        "onramp_role",
        "onramp_first_call_at",
        "onramp_last_call_at",
        "onramp_top_route",
        "onramp_plan_quota_used_pct",
        "onramp_segments",
    } == set(names)
    assert names["onramp_role"].options[-1] == "unknown"
    assert specs["companies"].id_property == "onramp_company_id"
    renamed = load_pump_specs(fresh.manifest, company_id_property="account_key")
    assert {s.object_type: s.id_property for s in renamed}["companies"] == "account_key"


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"object": "deals"}, "object must be one of contacts, companies"),
        (
            {
                "object": "contacts",
                "id_column": "email",
                "properties": [{"column": "x", "type": "money"}],
            },
            "type must be one of",
        ),
        (
            {
                "object": "contacts",
                "id_column": "email",
                "properties": [{"column": "s", "type": "enumeration"}],
            },
            "enumeration s needs its options",
        ),
        ({"object": "contacts", "id_column": "email", "properties": []}, "non-empty list"),
    ],
)
def test_bad_meta_is_one_line(meta, message):
    with pytest.raises(SpecError, match=message) as info:
        spec_from_meta("pump_x", meta)
    assert "\n" not in str(info.value)


def test_demo_step_without_settings_says_skipped(engine, fresh, monkeypatch):
    from crm_sync.demo import demo_crm_step

    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("ONRAMP_CRM", raising=False)
    lines = demo_crm_step(engine, fresh.as_of, fresh.manifest, echo=lambda _: None)
    assert len(lines) == 1 and lines[0].startswith("CRM step skipped")


def test_demo_step_pushes_to_the_local_server(engine, fresh, monkeypatch):
    from crm_sync.demo import demo_crm_step

    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("ONRAMP_CRM", "hubspot-local")
    servers: list[HubSpotServer] = []

    def local_server() -> HubSpotServer:
        servers.append(HubSpotServer())
        return servers[-1]

    lines = demo_crm_step(
        engine, fresh.as_of, fresh.manifest, echo=lambda _: None, local_server=local_server
    )
    assert len(lines) == 2 and all("local HubSpot server" in line for line in lines)
    assert "contacts pushed" in lines[1] and servers[0].count("POST") > 0
