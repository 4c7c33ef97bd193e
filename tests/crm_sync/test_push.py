"""The CRM push end to end: dbt-built pumps, the official hubspot-api-client, a local server that
keeps HubSpot's contract."""

from __future__ import annotations

import logging
import math

import pytest
import sqlalchemy as sa

from crm_sync.errors import BlastRadiusExceeded
from crm_sync.hubspot import HubSpotClient, RetryPolicy
from crm_sync.push import push_all
from crm_sync.result import PushResult
from onramp.settings import Settings

UPSERT_CONTACTS = "/crm/v3/objects/contacts/batch/upsert"
UPSERT_COMPANIES = "/crm/v3/objects/companies/batch/upsert"


def _push(engine, fresh, **kwargs) -> dict[str, PushResult]:
    outcomes = push_all(engine, Settings.from_env(), fresh.specs, fresh.as_of, **kwargs)
    errors = [o for o in outcomes if not isinstance(o, PushResult)]
    assert not errors, errors
    return {r.object_type: r for r in outcomes}


def _pump_rows(engine, table: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(f"select * from pumps.{table}"))]


def test_first_push_creates_properties_and_every_contact(engine, fresh, hubspot_env):
    hs = hubspot_env
    contacts = _pump_rows(engine, "pump_hubspot_contacts")
    companies = _pump_rows(engine, "pump_hubspot_companies")
    assert len(contacts) > 20 and len(companies) > 3

    results = _push(engine, fresh)

    assert results["contacts"].pushed == len(contacts) and results["contacts"].first_push
    assert results["companies"].pushed == len(companies)
    in_hubspot = hs.records("contacts")
    assert set(in_hubspot) == {c["email"] for c in contacts}
    one = next(c for c in contacts if c["onramp_api_events_30d"] > 0)
    props = in_hubspot[one["email"]]["properties"]
    assert props["onramp_api_events_30d"] == str(one["onramp_api_events_30d"])
    assert props["onramp_funnel_stage"] == one["onramp_funnel_stage"]
    assert props["onramp_last_call_at"].endswith("Z")
    # properties in the onramp group, with their types and options
    assert "onramp" in hs.group_names("contacts") and "onramp" in hs.group_names("companies")
    stage = hs.property_def("contacts", "onramp_funnel_stage")
    assert stage["type"] == "enumeration" and stage["groupName"] == "onramp"
    assert {o["value"] for o in stage["options"]} == {
        "not_integrated",
        "sandbox",
        "production",
        "dormant",
    }
    assert hs.property_def("contacts", "onramp_role")["type"] == "enumeration"
    assert hs.property_def("contacts", "onramp_api_events_7d")["type"] == "number"
    assert hs.property_def("contacts", "onramp_first_call_at")["type"] == "datetime"
    assert hs.property_def("contacts", "onramp_segments")["fieldType"] == "checkbox"
    assert hs.property_def("companies", "onramp_company_id")["hasUniqueValue"] is True
    assert hs.property_def("companies", "onramp_first_production_date")["type"] == "date"
    # batches of at most 100, as few as the rows allow
    assert hs.count("POST", UPSERT_CONTACTS) == math.ceil(len(contacts) / 100)
    assert all(len(i) <= 100 for i in [hs.upserted("contacts")])
    # every contact with a company is associated with that company's record
    company_ids = {k: v["id"] for k, v in hs.records("companies", by="onramp_company_id").items()}
    expected = {
        (in_hubspot[c["email"]]["id"], company_ids[c["company_id"]])
        for c in contacts
        if c["company_id"]
    }
    assert expected and hs.associations == expected
    assert results["contacts"].associations == len(expected)
    with engine.connect() as conn:
        confirmed = conn.execute(
            sa.text("select count(*) from crm_sync.confirmed where pump = 'pump_hubspot_contacts'")
        ).scalar_one()
        runs = conn.execute(sa.text("select status from crm_sync.runs")).scalars().all()
    assert confirmed == len(contacts) and runs == ["ok", "ok"]


def test_second_push_with_no_change_sends_nothing(engine, fresh, hubspot_env):
    _push(engine, fresh)
    hubspot_env.reset()
    results = _push(engine, fresh)
    assert hubspot_env.requests == []
    assert results["contacts"].changed == 0 and results["companies"].changed == 0
    assert results["contacts"].requests == 0


def test_one_changed_developer_sends_one_record(engine, fresh, hubspot_env):
    hs = hubspot_env
    _push(engine, fresh)
    email = sorted(hs.records("contacts"))[3]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update pumps.pump_hubspot_contacts set onramp_api_events_7d = 424242, "
                "onramp_funnel_stage = 'production' where email = :email"
            ),
            {"email": email},
        )
    hs.reset()
    results = _push(engine, fresh)
    assert results["contacts"].changed == 1 and results["contacts"].pushed == 1
    assert hs.count("POST", UPSERT_CONTACTS) == 1
    sent = hs.upserted("contacts")
    assert [i["id"] for i in sent] == [email]
    assert hs.count("POST", UPSERT_COMPANIES) == 0
    # one upsert plus the property check (one GET of the contact properties)
    assert results["contacts"].requests == 2
    assert hs.records("contacts")[email]["properties"]["onramp_api_events_7d"] == "424242"


def test_429_storm_loses_nothing(engine, fresh, hubspot_env):
    hs = hubspot_env
    hs.fail_next(12, status=429, path=UPSERT_CONTACTS, retry_after=0.01)
    hs.fail_next(2, status=503, path=UPSERT_COMPANIES)
    client = HubSpotClient(hs.token, host=hs.url, retry=RetryPolicy(base_backoff_s=0.01))
    results = _push(engine, fresh, client=client)
    contacts = _pump_rows(engine, "pump_hubspot_contacts")
    assert set(hs.records("contacts")) == {c["email"] for c in contacts}
    assert results["contacts"].rate_limited == 12 and results["contacts"].unconfirmed == 0
    assert results["companies"].pushed == len(_pump_rows(engine, "pump_hubspot_companies"))
    assert hs.count("POST", UPSERT_CONTACTS) == 12 + math.ceil(len(contacts) / 100)


def test_rate_limit_wait_is_bounded(engine, fresh, hubspot_env):
    hs = hubspot_env
    hs.fail_next(50, status=429, path=UPSERT_COMPANIES, retry_after=0.01)
    client = HubSpotClient(hs.token, host=hs.url, retry=RetryPolicy(max_rate_limit_hits=3))
    outcomes = push_all(engine, Settings.from_env(), fresh.specs, fresh.as_of, client=client)
    error = next(o for o in outcomes if not isinstance(o, PushResult))
    assert "still rate limits after 4 tries" in str(error)
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from crm_sync.runs where pump = 'pump_hubspot_companies'")
        ).scalar_one()
    assert status == "error"


def test_rejected_records_are_reported_while_the_rest_land(engine, fresh, hubspot_env):
    hs = hubspot_env
    contacts = sorted(_pump_rows(engine, "pump_hubspot_contacts"), key=lambda c: c["email"])
    bad_email = "broken-address@localhost"
    with engine.begin() as conn:
        conn.execute(
            sa.text("update pumps.pump_hubspot_contacts set email = :bad where email = :email"),
            {"bad": bad_email, "email": contacts[5]["email"]},
        )
        conn.execute(
            sa.text(
                "update pumps.pump_hubspot_contacts set onramp_top_route = '/v1/forbidden' "
                "where email = :email"
            ),
            {"email": contacts[9]["email"]},
        )
    hs.reject_value("onramp_top_route", "/v1/forbidden")
    results = _push(engine, fresh)
    r = results["contacts"]
    assert r.rejected == 2 and r.pushed == len(contacts) - 2
    landed = set(hs.records("contacts"))
    assert bad_email not in landed and contacts[9]["email"] not in landed
    assert len(landed) == len(contacts) - 2
    with engine.connect() as conn:
        rejected = dict(
            conn.execute(sa.text("select record_key, message from crm_sync.rejected")).all()
        )
    assert "INVALID_EMAIL" in rejected[bad_email] and bad_email not in rejected[bad_email]
    assert "not a valid value for onramp_top_route" in rejected[contacts[9]["email"]]
    assert all(bad_email not in line for line in r.rejections)
    # a rejected record is not sent again until its values change
    hs.reset()
    again = _push(engine, fresh)
    assert again["contacts"].changed == 0 and hs.requests == []


def test_token_never_in_logs_errors_or_warehouse(engine, fresh, hubspot_env, caplog, capsys):
    hs = hubspot_env
    caplog.set_level(logging.DEBUG)
    for name in ("hubspot", "urllib3", "crm_sync"):
        caplog.set_level(logging.DEBUG, logger=name)
    hs.fail_next(2, status=429, path=UPSERT_CONTACTS)
    _push(engine, fresh)
    # a wrong token: the error names the variable, never the value
    wrong = "pat-na1-wrong-token-9999"
    client = HubSpotClient(wrong, host=hs.url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update pumps.pump_hubspot_companies set onramp_developers = 99 "
                "where company_id = (select min(company_id) from pumps.pump_hubspot_companies)"
            )
        )
    outcomes = push_all(engine, Settings.from_env(), fresh.specs, fresh.as_of, client=client)
    errors = [str(o) for o in outcomes if not isinstance(o, PushResult)]
    assert errors and "HUBSPOT_ACCESS_TOKEN" in errors[0]
    with engine.connect() as conn:
        stored = " ".join(
            str(v)
            for v in conn.execute(
                sa.text(
                    "select r::text from crm_sync.runs as r union all "
                    "select c::text from crm_sync.confirmed as c union all "
                    "select j::text from crm_sync.rejected as j"
                )
            ).scalars()
        )
    captured = capsys.readouterr()
    everything = caplog.text + " ".join(errors) + stored + captured.out + captured.err
    assert "429" in caplog.text  # the logs were captured
    for token in (hs.token, wrong):
        assert token not in everything
    assert repr(Settings.from_env()).count(hs.token) == 0


def test_dry_run_writes_and_sends_nothing(engine, fresh, hubspot_env):
    results = _push(engine, fresh, dry_run=True)
    assert results["contacts"].changed == len(_pump_rows(engine, "pump_hubspot_contacts"))
    assert results["contacts"].sample and results["contacts"].associations > 0
    assert hubspot_env.requests == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("select to_regnamespace('crm_sync')")).scalar() is None


def test_blast_radius_guard(engine, fresh, hubspot_env):
    _push(engine, fresh)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update pumps.pump_hubspot_contacts "
                "set onramp_api_events_30d = 1 + onramp_api_events_30d"
            )
        )
    hubspot_env.reset()
    outcomes = push_all(engine, Settings.from_env(), fresh.specs, fresh.as_of)
    refused = [o for o in outcomes if isinstance(o, BlastRadiusExceeded)]
    assert refused and "--allow-large" in str(refused[0])
    assert hubspot_env.count("POST", UPSERT_CONTACTS) == 0
    results = _push(engine, fresh, allow_large=True)
    assert results["contacts"].pushed == results["contacts"].rows


def test_stale_events_hold_the_push_back(engine, fresh, hubspot_env):
    from datetime import timedelta

    outcomes = push_all(engine, Settings.from_env(), fresh.specs, fresh.as_of + timedelta(days=5))
    assert all(isinstance(o, PushResult) and o.status == "held_back" for o in outcomes)
    assert all(o.dry_run and o.changed > 0 for o in outcomes)
    assert hubspot_env.requests == []


def test_missing_option_is_added_to_an_existing_enumeration(engine, fresh, hubspot_env):
    hs = hubspot_env
    _push(engine, fresh)
    # someone trimmed the options in HubSpot; the next push with a change puts them back
    prop = hs.property_def("contacts", "onramp_funnel_stage")
    with hs._lock:  # test-only surgery on the server's state
        hs._state.properties["contacts"]["onramp_funnel_stage"]["options"] = prop["options"][:1]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update pumps.pump_hubspot_contacts set onramp_api_events_7d = 7 "
                "where email = (select min(email) from pumps.pump_hubspot_contacts)"
            )
        )
    _push(engine, fresh)
    assert len(hs.property_def("contacts", "onramp_funnel_stage")["options"]) == 4


@pytest.mark.parametrize("dry_run", [True, False])
def test_command(engine, fresh, hubspot_env, dry_run):
    from click.testing import CliRunner

    from crm_sync.commands import crm

    args = ["--as-of", fresh.as_of.isoformat()] + (["--dry-run"] if dry_run else [])
    result = CliRunner().invoke(crm, args)
    assert result.exit_code == 0, result.output
    assert "pump_hubspot_contacts" in result.output and "requests" in result.output
    assert hubspot_env.token not in result.output
    if dry_run:
        assert "dry run: nothing written" in result.output and "would push" in result.output
        assert "@" not in result.output  # addresses are hashed
        assert hubspot_env.requests == []
    else:
        assert "created properties" in result.output
        assert len(hubspot_env.records("contacts")) > 0
