"""The local instance's event log keeps its SQLite connections open and stays Dagster's format."""

import dagster as dg
import pytest

from onramp.settings import Settings
from orchestration.lib.instance import ensure_dagster_home
from orchestration.lib.sqlite_events import _OPEN_RUN_FILES, PooledSqliteEventLogStorage


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers():
    yield dg.MaterializeResult(metadata={"rows": 3})
    yield dg.AssetCheckResult(check_name="positive", passed=True)


@dg.asset(deps=[numbers])
def doubled():
    return dg.MaterializeResult(metadata={"rows": 3})


@pytest.fixture
def local_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ONRAMP_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return ensure_dagster_home(Settings.from_env())


def test_runs_stored_through_kept_connections_read_back_by_a_fresh_instance(local_home):
    instance = dg.DagsterInstance.from_config(str(local_home))
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)

    for _ in range(_OPEN_RUN_FILES + 2):
        result = dg.materialize([numbers, doubled], instance=instance)
        assert result.success
    # the index plus at most _OPEN_RUN_FILES run files stay open, however many runs
    assert len(storage._engines) <= _OPEN_RUN_FILES + 1

    # another process (the UI, the daemon) opens the same files with Dagster's own reader
    reader = dg.DagsterInstance.from_config(str(local_home))
    latest = reader.get_latest_materialization_event(dg.AssetKey("doubled"))
    assert latest is not None and latest.run_id == result.run_id
    check = reader.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("numbers"), "positive")]
    )
    assert len(check) == 1
    assert len(reader.get_runs()) == _OPEN_RUN_FILES + 2

    instance.wipe()  # closes the files before Dagster deletes them
    assert storage._engines == {} or set(storage._engines) <= {"index"}
    assert instance.get_latest_materialization_event(dg.AssetKey("doubled")) is None
