"""One as-of day everywhere: onramp.as_of (parse, yesterday, partition key <-> day), the daily
partitions built on it, the hourly sync's choice of partition, and one manifest for every reader."""

from __future__ import annotations

import datetime as dt
import os
import time

import dagster as dg
import pytest

from tests.orchestration.conftest import AS_OF


def test_as_of_parses_defaults_and_round_trips_partition_keys(monkeypatch):
    from onramp.as_of import (
        AsOfError,
        check_in_partitions,
        from_partition_key,
        parse_as_of,
        partitions_start,
        to_partition_key,
        yesterday_utc,
    )

    late_evening = dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert yesterday_utc(late_evening) == dt.date(2026, 11, 27)  # 04:30 UTC on the 28th
    assert parse_as_of(None) == parse_as_of("") == yesterday_utc()
    assert parse_as_of(" 2026-11-26 ") == dt.date(2026, 11, 26)
    assert parse_as_of(dt.datetime(2026, 11, 26, 13)) == dt.date(2026, 11, 26)
    assert from_partition_key(to_partition_key(AS_OF)) == AS_OF
    with pytest.raises(AsOfError, match="YYYY-MM-DD"):
        parse_as_of("26/11/2026")
    monkeypatch.setenv("ONRAMP_PARTITIONS_START", "2026-03-01")
    assert partitions_start() == dt.date(2026, 3, 1)
    with pytest.raises(AsOfError, match="before the first partition"):
        check_in_partitions(dt.date(2026, 2, 28))
    with pytest.raises(AsOfError, match="not complete"):
        check_in_partitions(yesterday_utc() + dt.timedelta(days=1))
    monkeypatch.setenv("ONRAMP_PARTITIONS_START", "March")
    with pytest.raises(AsOfError, match="ONRAMP_PARTITIONS_START"):
        partitions_start()


def test_cli_rejects_a_bad_as_of_the_same_way_in_every_command(orch_env):
    from click.testing import CliRunner

    from cli.main import cli

    for command in ("build", "sync", "demo"):
        result = CliRunner().invoke(cli, [command, "--as-of", "yesterday"])
        assert result.exit_code == 2, command
        assert result.output.strip().splitlines()[-1] == (
            "Error: Invalid value for '--as-of': as-of day must be YYYY-MM-DD, got 'yesterday'"
        ), command


def test_hourly_sync_runs_for_the_partition_the_segments_were_built_for(pipeline, instance):
    from orchestration.definitions import defs

    schedule = defs.resolve_schedule_def("hourly_sync")
    repository = defs.get_repository_def()
    with dg.build_schedule_context(instance=instance, repository_def=repository) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == AS_OF.isoformat()
    assert request.tags["onramp/email_provider"] == "outbox"


def test_one_manifest_for_sync_and_dagster_reparsed_after_a_yaml_edit(orch_env):
    from email_sync.commands import find_manifest
    from onramp.manifest import PROJECT_DIR, manifest_is_current, manifest_path

    path = manifest_path()
    assert find_manifest() == path  # `onramp sync` and the code location read the same file
    yaml = next((PROJECT_DIR / "dbt_project" / "models" / "segments").glob("*.yml"))
    # as if the segment YAML was saved after the last parse (times in the past: a future mtime
    # would leave the project looking edited until the clock passes it)
    now = time.time()
    os.utime(path, (now - 10, now - 10))
    os.utime(yaml, (now - 5, now - 5))
    assert not manifest_is_current()
    assert manifest_path() == path and path.stat().st_mtime >= now - 5
    assert manifest_is_current()
