"""What an analytics engineer sees after `onramp build`: segment members, facts, contracts."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa

from sample_data import SEGMENTS
from tests.dbt.conftest import (
    AS_OF,
    CALLER_EVENTS,
    CALLER_WITHOUT_RECORD,
    INCREMENTAL_MODELS,
    LOOKBACK_DAYS,
    WEEK_TOTALS_MODELS,
    WEEKLY_MODELS,
    Built,
    read_csv,
)

# expected_members.csv's `detail` column, per segment
DETAIL = {
    "stopped_traffic": "top_route",
    "unused_feature": "route",
    "quota_warning": "cast(month_start as text)",
    "quota_exceeded": "cast(month_start as text)",
    "rate_limited": "cast(usage_date as text)",
    "incident_affected": "incident_id",
}
COMMON_COLUMNS = {
    "member_key": "text",
    "developer_id": "text",
    "email": "text",
    "name": "text",
    "role": "text",
    "company_name": "text",
    "marketing_opt_in": "boolean",
}


def _members(conn: sa.Connection, segment: str) -> set[tuple[str, str]]:
    """The members the reference evaluator knows: developers with a record (the sample data's
    developers), not the caller the session adds without one."""
    detail = DETAIL.get(segment, "''")
    rows = conn.execute(
        sa.text(
            f"select developer_id, {detail} from segments.seg_{segment}"
            " where developer_id <> :caller"
        ),
        {"caller": CALLER_WITHOUT_RECORD},
    )
    return {(r[0], r[1]) for r in rows}


def test_build_command_prints_a_summary(built: Built) -> None:
    assert built.build_exit_code == 0, built.build_output
    summary, callers = built.build_output.strip().splitlines()[-2:]
    assert re.match(
        r"dbt build: \d+ models built, \d+ tests passed, 0 failed in [0-9.]+ s$", summary
    )
    # the session's one caller without a developer record
    assert callers == (
        "1 API caller has no developer record: "
        "load your user export with `onramp load developers FILE`"
    )


def test_every_segment_has_exactly_the_expected_members(built: Built, engine: sa.Engine) -> None:
    expected: dict[str, set] = defaultdict(set)
    for row in read_csv(built.sample_dir / "expected_members.csv"):
        expected[row["segment"]].add((row["developer_id"], row["detail"]))
    with engine.connect() as conn:
        for segment in SEGMENTS:
            got = _members(conn, segment)
            assert got, f"seg_{segment} is empty"
            assert got == expected[segment], (
                f"seg_{segment}: missing {sorted(expected[segment] - got)[:5]}, "
                f"unexpected {sorted(got - expected[segment])[:5]}"
            )


def test_hand_picked_developers_of_each_archetype(built: Built, engine: sa.Engine) -> None:
    """The first developer of every archetype is in exactly its expected segments."""
    picked: dict[str, dict[str, str]] = {}
    for row in read_csv(built.sample_dir / "archetypes.csv"):
        picked.setdefault(row["archetype"], row)
    assert {"production", "never_integrates", "stopped_traffic", "edge_incident_in"} <= set(picked)
    with engine.connect() as conn:
        membership: dict[str, set[str]] = defaultdict(set)
        for segment in SEGMENTS:
            for developer_id, _ in _members(conn, segment):
                membership[developer_id].add(segment)
    for archetype, row in picked.items():
        expected = set(row["expected_segments"].split())
        assert membership[row["developer_id"]] == expected, archetype


def test_events_after_the_as_of_day_are_ignored(built: Built, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        late = conn.execute(
            sa.text("select count(*) from raw.api_events where occurred_at >= :d"),
            {"d": built.as_of + timedelta(days=1)},
        ).scalar_one()
        last_day = conn.execute(
            sa.text("select max(usage_date) from marts.fct_developer_daily_usage")
        ).scalar_one()
    assert late > 0  # the sample data has late events on purpose
    assert last_day == built.as_of


def test_incremental_runs_equal_full_refresh(built: Built, engine: sa.Engine) -> None:
    """Three daily partitions run one after the other, with late events, give the tables of one
    full refresh: every table of intermediate, marts and segments."""
    assert {f"{s}.{m}" for m, (s, _) in INCREMENTAL_MODELS.items()} <= set(built.compared_tables)
    compared_segments = {t for t in built.compared_tables if t.startswith("segments.")}
    assert {f"segments.seg_{s}" for s in SEGMENTS} <= compared_segments
    diff = "select count(*) from (select * from {} except all select * from {}) d"
    with engine.connect() as conn:
        for table in built.compared_tables:
            full, incremental = table, f"incremental_copy.{table.split('.')[1]}"
            only_full = conn.execute(sa.text(diff.format(full, incremental))).scalar_one()
            only_incremental = conn.execute(sa.text(diff.format(incremental, full))).scalar_one()
            assert (only_full, only_incremental) == (0, 0), table
        for model, (schema, _) in INCREMENTAL_MODELS.items():
            total = conn.execute(sa.text(f"select count(*) from {schema}.{model}")).scalar_one()
            assert total > 0, model


def test_incremental_runs_rebuilt_only_the_lookback_days(built: Built) -> None:
    """A run as of D deletes and inserts D and the lookback days before it, nothing older."""
    assert len(built.changed_days) == 2
    for as_of, changed in built.changed_days.items():
        for model in INCREMENTAL_MODELS:
            days = changed[model]
            assert as_of in days, (as_of, model)
            assert min(days) >= as_of - timedelta(days=LOOKBACK_DAYS), (as_of, model, sorted(days))
            assert max(days) == as_of, (as_of, model)


def test_a_run_rebuilds_the_complete_weeks_of_its_lookback_days(built: Built) -> None:
    """Weeks start on Monday and the weekly model holds the complete weeks before the as-of week:
    the run whose first lookback day is a Sunday rebuilds that week; the run whose lookback days
    all fall in its own week writes no week."""
    for as_of, changed in built.changed_days.items():
        first = as_of - timedelta(days=LOOKBACK_DAYS)
        first_week = first - timedelta(days=first.weekday())
        as_of_week = as_of - timedelta(days=as_of.weekday())
        expected = {first_week} if first_week < as_of_week else set()
        for model in WEEKLY_MODELS:
            assert changed[model] == expected, (as_of, model)
    for model in WEEKLY_MODELS:
        assert {bool(changed[model]) for changed in built.changed_days.values()} == {True, False}


def test_week_totals_are_rebuilt_only_when_the_lookback_reaches_a_complete_week(
    built: Built,
) -> None:
    """The runs as of Wednesday and Thursday share their as-of week with the first build: only
    Wednesday's lookback (from Sunday) reaches the complete week before, so only it rebuilds the
    per-pair totals; Thursday's run writes none."""
    for as_of, changed in built.changed_days.items():
        first = as_of - timedelta(days=LOOKBACK_DAYS)
        as_of_week = as_of - timedelta(days=as_of.weekday())
        for model in WEEK_TOTALS_MODELS:
            expected = {as_of_week} if first < as_of_week else set()
            assert changed[model] == expected, (as_of, model)


def test_late_events_rebuild_their_day(built: Built, engine: sa.Engine) -> None:
    # events of the day before each run's as-of day landed after that day was built: the run
    # rebuilt it (its rows are new), and the usage now counts every event of that day
    for as_of, late_day in built.late_days.items():
        for model in INCREMENTAL_MODELS:
            assert late_day in built.changed_days[as_of][model], (as_of, model)
    with engine.connect() as conn:
        for late_day in built.late_days.values():
            counted = conn.execute(
                sa.text(
                    "select sum(events) from incremental_copy.fct_developer_daily_usage"
                    " where usage_date = :d"
                ),
                {"d": late_day},
            ).scalar_one()
            landed = conn.execute(
                sa.text(
                    "select count(*) from raw.api_events"
                    " where occurred_at >= :d and occurred_at < :next"
                ),
                {
                    "d": f"{late_day}T00:00:00+00:00",
                    "next": f"{late_day + timedelta(days=1)}T00:00:00+00:00",
                },
            ).scalar_one()
            assert counted == landed, late_day


def test_one_stage_per_developer_and_day(engine: sa.Engine, built: Built) -> None:
    with engine.connect() as conn:
        gaps = conn.execute(
            sa.text(
                """
                select d.developer_id
                from marts.dim_developers d
                join marts.fct_developer_stage_daily s using (developer_id)
                group by d.developer_id, d.signup_date
                having count(*) != count(distinct s.stage_date)
                    or max(s.stage_date) != :as_of
                    or min(s.stage_date) > d.signup_date
                """
            ),
            {"as_of": built.as_of},
        ).all()
        stages = {
            r[0]
            for r in conn.execute(
                sa.text("select distinct stage from marts.fct_developer_stage_daily")
            )
        }
    assert gaps == []
    assert stages <= {"not_integrated", "sandbox", "production", "dormant"}
    assert {"not_integrated", "sandbox", "production"} <= stages


def test_routes_are_normalised(engine: sa.Engine, built: Built) -> None:
    with engine.connect() as conn:
        routes = {
            r[0]
            for r in conn.execute(sa.text("select distinct route from marts.fct_route_adoption"))
        }
    assert routes
    assert not [r for r in routes if "?" in r or any(part.isdigit() for part in r.split("/"))]
    assert any("{id}" in r for r in routes)


def test_schemas_are_exactly_the_design_names(engine: sa.Engine, built: Built) -> None:
    with engine.connect() as conn:
        schemas = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "select distinct table_schema from information_schema.tables "
                    "where table_schema not in ('pg_catalog', 'information_schema', 'raw', "
                    "'incremental_copy', 'public')"
                )
            )
        }
        tables = {
            r[0]
            for r in conn.execute(
                sa.text(
                    "select table_name from information_schema.tables "
                    + "where table_schema = 'segments'"
                )
            )
        }
    assert {"staging", "intermediate", "marts", "segments"} <= schemas
    assert not [s for s in schemas if s.endswith(("_staging", "_marts", "_segments"))]
    # the campaigns' own segments (goals and milestones) are not in the reference evaluator
    campaign_segments = {
        "seg_paid_plan",
        "seg_milestone_first_call",
        "seg_milestone_first_production",
        "seg_milestone_first_feature_call",
    }
    assert tables == {f"seg_{s}" for s in SEGMENTS} | campaign_segments


@pytest.mark.parametrize("segment", SEGMENTS)
def test_segment_contract_and_meta(built: Built, engine: sa.Engine, segment: str) -> None:
    node = built.manifest["nodes"][f"model.onramp.seg_{segment}"]
    assert node["schema"] == "segments"
    assert node["config"]["contract"]["enforced"] is True
    meta = node["config"]["meta"]["onramp"]
    assert set(meta) <= {
        "list",
        "custom_fields",
        "email",
        "sequence",
        "reentry",
        "requires_fresh_events",
        "notify",
    }
    assert "email" in meta or "list" in meta or "sequence" in meta
    if "sequence" in meta:
        assert meta["sequence"]["category"] in ("marketing", "transactional")
        assert [step["after_days"] for step in meta["sequence"]["steps"]] == sorted(
            step["after_days"] for step in meta["sequence"]["steps"]
        )
    if "email" in meta:
        assert meta["email"]["kind"] in ("marketing", "transactional")
        assert isinstance(meta["email"]["priority"], int)
    for field in meta.get("custom_fields", []):
        assert field in node["columns"]
    with engine.connect() as conn:
        columns = dict(
            conn.execute(
                sa.text(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'segments' and table_name = :t"
                ),
                {"t": f"seg_{segment}"},
            ).all()
        )
    assert {k: columns.get(k) for k in COMMON_COLUMNS} == COMMON_COLUMNS


def test_planned_segment_meta(built: Built) -> None:
    def meta(segment: str) -> dict:
        return built.manifest["nodes"][f"model.onramp.seg_{segment}"]["config"]["meta"]["onramp"]

    assert meta("stage_sandbox")["list"] == "Stage: sandbox"
    assert meta("stage_sandbox")["custom_fields"] == ["stage"]
    assert "email" not in meta("stage_production")
    assert meta("new_signups")["email"]["template"] == "welcome"
    assert meta("signup_no_calls_7d")["requires_fresh_events"] is True
    assert "list" in meta("signup_no_calls_7d")
    assert meta("quota_exceeded")["email"]["bypass_frequency_cap"] is True
    assert meta("incident_affected")["email"]["kind"] == "transactional"
    assert meta("stopped_traffic")["email"]["kind"] == "marketing"


def test_funnel_tables_for_bi(built: Built, engine: sa.Engine) -> None:
    exposures = built.manifest["exposures"]
    dashboard = exposures["exposure.onramp.onboarding_funnel_dashboard"]
    assert set(dashboard["depends_on"]["nodes"]) == {
        "model.onramp.fct_signup_cohorts_weekly",
        "model.onramp.fct_stage_counts_daily",
        "model.onramp.fct_stage_transitions_daily",
    }
    with engine.connect() as conn:
        signups = conn.execute(
            sa.text("select sum(signups) from marts.fct_signup_cohorts_weekly")
        ).scalar_one()
        developers = conn.execute(sa.text("select count(*) from marts.dim_developers")).scalar_one()
        shares = conn.execute(
            sa.text(
                "select min(share_first_call_1d), max(share_production_30d) "
                "from marts.fct_signup_cohorts_weekly"
            )
        ).one()
        counted = conn.execute(
            sa.text(
                "select sum(developers) from marts.fct_stage_counts_daily where stage_date = :d"
            ),
            {"d": built.as_of},
        ).scalar_one()
    assert signups == developers - 1  # the caller without a developer record has no sign-up
    assert 0 <= shares[0] <= 1 and 0 < shares[1] <= 1
    assert counted == developers


def test_a_caller_without_a_developer_record_is_a_developer_never_emailed(
    built: Built, engine: sa.Engine
) -> None:
    """Events from a caller with no developer record: the caller is in dim_developers (unknown
    sign-up and role, no address, no consent), in the stage and funnel tables from its first call,
    and no segment row of it can be emailed."""
    from email_sync.render import valid_email

    first_day = AS_OF - timedelta(days=CALLER_EVENTS[0][0])
    first_success_day = AS_OF - timedelta(days=CALLER_EVENTS[1][0])
    with engine.connect() as conn:
        dim = (
            conn.execute(
                sa.text("select * from marts.dim_developers where developer_id = :c"),
                {"c": CALLER_WITHOUT_RECORD},
            )
            .mappings()
            .one()
        )
        recorded = conn.execute(
            sa.text(
                "select bool_and(has_developer_record) from marts.dim_developers"
                " where developer_id <> :c"
            ),
            {"c": CALLER_WITHOUT_RECORD},
        ).scalar_one()
        stages = conn.execute(
            sa.text(
                "select stage_date, stage from marts.fct_developer_stage_daily"
                " where developer_id = :c order by stage_date"
            ),
            {"c": CALLER_WITHOUT_RECORD},
        ).all()
        entered = conn.execute(
            sa.text(
                "select from_stage, to_stage, developers from marts.fct_stage_transitions_daily"
                " where stage_date = :d and from_stage = 'signed_up'"
            ),
            {"d": first_day},
        ).all()
        counted_sandbox = conn.execute(
            sa.text(
                "select developers from marts.fct_stage_counts_daily"
                " where stage_date = :d and stage = 'sandbox'"
            ),
            {"d": built.as_of},
        ).scalar_one()
        sandbox_in_dim = conn.execute(
            sa.text("select count(*) from marts.dim_developers where current_stage = 'sandbox'")
        ).scalar_one()
        segment_rows = []
        for segment in SEGMENTS:
            segment_rows += [
                (segment, *r)
                for r in conn.execute(
                    sa.text(
                        f"select email, marketing_opt_in from segments.seg_{segment}"
                        " where developer_id = :c"
                    ),
                    {"c": CALLER_WITHOUT_RECORD},
                )
            ]
    assert dim["has_developer_record"] is False and recorded is True
    assert dim["signed_up_at"] is None and dim["signup_date"] is None
    assert dim["role"] == "unknown"
    assert dim["email"] is None and dim["marketing_opt_in"] is False
    assert dim["lifetime_events"] == len(CALLER_EVENTS)
    assert dim["first_call_at"].date() == first_day
    assert dim["first_sandbox_date"] == first_success_day
    assert dim["current_stage"] == "sandbox"
    # from its first call to the as-of day, one stage a day; not_integrated before first success
    assert [d for d, _ in stages] == [
        first_day + timedelta(days=n) for n in range((built.as_of - first_day).days + 1)
    ]
    assert {s for d, s in stages if d < first_success_day} == {"not_integrated"}
    assert {s for d, s in stages if d >= first_success_day} == {"sandbox"}
    assert ("signed_up", "not_integrated") in {(f, t) for f, t, _ in entered}
    assert counted_sandbox == sandbox_in_dim
    # it is in the stage segment, but with no address and no consent: nothing can be sent to it
    assert ("stage_sandbox", None, False) in segment_rows
    assert all(not valid_email(email) and not opt_in for _, email, opt_in in segment_rows)


def test_a_bad_as_of_date_fails_with_one_line(built: Built) -> None:
    from onramp.dbt import DbtError, run_dbt

    with pytest.raises(DbtError) as err:
        run_dbt(["compile", "--select", "dim_developers", "--vars", "{as_of_date: tomorrow}"])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("dbt compile failed: ")
    assert "var as_of_date must be YYYY-MM-DD, got 'tomorrow'" in message


def test_build_command_rejects_a_bad_date() -> None:
    from click.testing import CliRunner

    from onramp.dbt import build

    result = CliRunner().invoke(build, ["--as-of", "2026-13-01"])
    assert result.exit_code == 2
    assert "Invalid value for '--as-of'" in result.output


def test_dbt_threads_follow_the_setting_or_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from onramp.errors import OnrampError
    from onramp.warehouse import dbt_threads

    monkeypatch.setenv("ONRAMP_DBT_THREADS", "3")
    assert dbt_threads() == 3
    monkeypatch.setenv("ONRAMP_DBT_THREADS", "")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert dbt_threads() == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert dbt_threads() == 4
    monkeypatch.setenv("ONRAMP_DBT_THREADS", "many")
    with pytest.raises(OnrampError, match="ONRAMP_DBT_THREADS"):
        dbt_threads()
