"""How ONRAMP_WAREHOUSE=spark reaches dbt: the profile's spark output, its own target folder.
No Spark session is needed for these."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from onramp.settings import Settings


def test_the_spark_warehouse_selects_the_spark_output(monkeypatch: pytest.MonkeyPatch) -> None:
    from onramp.warehouse import dbt_env

    monkeypatch.setenv("ONRAMP_WAREHOUSE", "spark")
    monkeypatch.setenv("ONRAMP_DATABASE_URL", "postgresql://nobody@unreachable.invalid/x")
    env = dbt_env()  # no PostgreSQL is contacted for dbt on Spark
    assert env["ONRAMP_DBT_TARGET"] == "spark"
    assert not any(key.startswith("PG") for key in env)

    profile = yaml.safe_load(
        (Path(__file__).parents[2] / "dbt_project" / "profiles.yml").read_text()
    )
    output = profile["onramp"]["outputs"]["spark"]
    assert (output["type"], output["method"]) == ("spark", "session")
    assert "ONRAMP_DBT_TARGET" in profile["onramp"]["target"]


def test_each_engine_has_its_own_target_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from onramp.manifest import target_dir

    monkeypatch.setenv("DBT_TARGET_PATH", "/tmp/onramp-target")
    settings = Settings.from_env()
    assert target_dir(dataclasses.replace(settings, warehouse="postgres")) == Path(
        "/tmp/onramp-target"
    )
    assert target_dir(dataclasses.replace(settings, warehouse="spark")) == Path(
        "/tmp/onramp-target/spark"
    )
