"""The code location as an operator sees it: assets, checks, groups, schedules, sensor, pools.

The asset graph is snapshotted in snapshots/definitions.json: a dbt model, test or segment added
or removed shows up here as a diff. After an intended change, refresh it with
`ONRAMP_UPDATE_SNAPSHOTS=1 pytest tests/orchestration/test_definitions.py` and review the diff; a
missing snapshot fails the test (it is never written silently).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from tests.orchestration.conftest import AS_OF

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


@pytest.fixture(scope="module")
def defs(orch_env) -> dg.Definitions:
    from orchestration.definitions import defs

    return defs


@pytest.fixture(scope="module")
def graph(defs):
    return defs.resolve_asset_graph()


def _snapshot(defs, graph) -> dict:
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    return {
        "assets": {k.to_user_string(): graph.get(k).group_name for k in keys},
        "checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "schedules": sorted(s.name for s in defs.schedules),
        "sensors": sorted(s.name for s in defs.sensors),
    }


def test_asset_graph_matches_snapshot(defs, graph):
    current = _snapshot(defs, graph)
    if os.environ.get("ONRAMP_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), (
        f"{SNAPSHOT} is missing: run with ONRAMP_UPDATE_SNAPSHOTS=1 and review the new file"
    )
    expected = json.loads(SNAPSHOT.read_text())
    assert current["assets"] == expected["assets"]
    assert set(current["checks"]) == set(expected["checks"])
    assert (
        current["jobs"]
        == expected["jobs"]
        == [
            "build_and_sync",
            "crm_push",
            "engagement_refresh",
            "sync_segments",
        ]
    )
    assert current["schedules"] == expected["schedules"] == ["daily_build_and_sync", "hourly_sync"]
    assert current["sensors"] == expected["sensors"] == ["email_events_arrived", "landing_files"]


def test_one_sync_asset_per_synced_segment_downstream_of_its_model(graph):
    from email_sync.specs import load_segment_specs
    from onramp.manifest import manifest_path

    specs = load_segment_specs(manifest_path())
    assert specs, "the dbt project declares no synced segment"
    sync_keys = {k for k in graph.get_all_asset_keys() if k.to_user_string().startswith("sync_")}
    assert sync_keys == {dg.AssetKey(f"sync_{s.name}") for s in specs}
    for spec in specs:
        node = graph.get(dg.AssetKey(f"sync_{spec.name}"))
        assert node.parent_keys == {dg.AssetKey(f"seg_{spec.name}")}
        assert node.group_name == "email"
        assert node.pools == {"email_provider"}
        assert dg.AssetCheckKey(node.key, "no_failed_sends") in graph.asset_check_keys


def test_raw_loads_feed_staging_and_models_are_grouped_by_dbt_folder(graph):
    assert graph.get(dg.AssetKey("stg_raw__api_events")).parent_keys == {
        dg.AssetKey("raw_api_events")
    }
    assert graph.get(dg.AssetKey("raw_api_events")).is_materializable
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {
        "raw",
        "staging",
        "intermediate",
        "marts",
        "segments",
        "pumps",
        "email",
        "crm",
        "report",
    }
    for key in graph.get_all_asset_keys():
        name = key.to_user_string()
        expected = {"stg_": "staging", "int_": "intermediate", "seg_": "segments"}.get(name[:4])
        if expected:
            assert graph.get(key).group_name == expected, name


def test_dbt_tests_are_asset_checks_of_their_models(graph):
    checks = {k.to_user_string() for k in graph.asset_check_keys}
    assert "seg_stopped_traffic:unique_seg_stopped_traffic_member_key" in checks
    assert "raw_api_events:events_fresh" in checks


def test_schedules_and_sensor_are_off_unless_production_setting(defs, monkeypatch):
    from orchestration.lib import automation

    for schedule in map(defs.resolve_schedule_def, (s.name for s in defs.schedules)):
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED, schedule.name
    for sensor in defs.sensors:
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED, sensor.name
    monkeypatch.setenv("ONRAMP_SCHEDULES", "on")
    assert automation.default_schedule_status() == dg.DefaultScheduleStatus.RUNNING
    assert automation.default_sensor_status() == dg.DefaultSensorStatus.RUNNING


def test_every_asset_is_partitioned_by_the_one_daily_partitioning(defs, graph):
    from orchestration.lib.partitions import DAILY

    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            assert node.partitions_def == DAILY, key.to_user_string()
    assert DAILY.get_last_partition_key() == AS_OF.isoformat()  # yesterday, the last whole day


def test_daily_schedule_builds_and_syncs_yesterday_one_run_per_provider_account(defs):
    import datetime as dt

    schedule = defs.resolve_schedule_def("daily_build_and_sync")
    tick = dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-11-26"
    assert request.tags["onramp/email_provider"] == "outbox"
    assert schedule.cron_schedule == "0 5 * * *"


def test_hourly_sync_waits_for_a_build(defs):
    schedule = defs.resolve_schedule_def("hourly_sync")
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(instance=instance) as context:
            result = schedule.evaluate_tick(context)
    assert not result.run_requests
    assert "never built" in result.skip_message


def test_ui_settings_write_an_instance_with_one_push_at_a_time(orch_env):
    from onramp.settings import Settings
    from orchestration.commands import ui_command_line, ui_environment

    env = ui_environment(Settings.from_env())
    assert env["DAGSTER_HOME"] == str(orch_env.dagster_home)
    assert env["ONRAMP_DATABASE_URL"] == orch_env.database_url
    assert env["ONRAMP_PG_DBNAME"] == "onramp_orchestration"
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        limits = concurrency.run_queue_config.tag_concurrency_limits
        assert {"key": "onramp/email_provider", "value": {"applyLimitPerUniqueValue": True},
                "limit": 1} in limits  # fmt: skip
    finally:
        instance.dispose()
    assert ui_command_line("127.0.0.1", 3999)[-6:] == [
        "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", "3999",
    ]  # fmt: skip
