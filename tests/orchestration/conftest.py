"""Fixtures for the Dagster tests: an own database and ONRAMP_HOME, and one full pipeline run.

The orchestration tests share the session's embedded PostgreSQL but use their own database in it
(and their own ONRAMP_HOME, so their own outbox and Dagster instance): the rows and emails they
assert on are exactly the ones their run produced, whatever other areas' tests loaded. The full
graph is materialized once per session (it costs a dbt build); every test that needs it reads
the same run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
import sqlalchemy as sa

from onramp.as_of import yesterday_utc

# The latest complete day, so the run materializes the latest daily partition (what the UI test
# looks for); the sample data is generated for it, so every expectation follows the day.
AS_OF = yesterday_utc()
SAMPLE = {"developers": 40, "days": 16, "seed": 7}
DATABASE = "onramp_orchestration"
_ENV_KEYS = (
    "ONRAMP_HOME",
    "ONRAMP_DATABASE_URL",
    "ONRAMP_EMAIL_PROVIDER",
    "DAGSTER_HOME",
    "ONRAMP_LANDING_DIR",
    "ONRAMP_SCHEDULES",
)


@dataclass
class OrchestrationEnv:
    home: Path
    database_url: str
    engine: sa.Engine

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def emails(self) -> list[Path]:
        return sorted(self.outbox.rglob("*.eml")) if self.outbox.exists() else []


def _with_database(url: str, name: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="package")
def orch_env(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> OrchestrationEnv:
    from onramp.warehouse import get_engine, sqlalchemy_url

    admin = sa.create_engine(sqlalchemy_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"drop database if exists {DATABASE} with (force)"))
        conn.execute(sa.text(f"create database {DATABASE}"))
    admin.dispose()
    url = _with_database(pg_url, DATABASE)
    home = tmp_path_factory.mktemp("orchestration_home")
    saved = {key: os.environ.get(key) for key in _ENV_KEYS}
    for key in _ENV_KEYS:
        os.environ.pop(key, None)
    os.environ.update(
        {"ONRAMP_HOME": str(home), "ONRAMP_DATABASE_URL": url, "ONRAMP_EMAIL_PROVIDER": "outbox"}
    )
    try:
        yield OrchestrationEnv(home=home, database_url=url, engine=get_engine())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class PipelineRun:
    env: OrchestrationEnv
    demo: object  # orchestration.demo_pipeline.DemoResult
    manifest: dict
    emails_after: int

    @property
    def sample_dir(self) -> Path:
        return self.demo.sample_dir


@pytest.fixture(scope="package")
def pipeline(orch_env: OrchestrationEnv, instance) -> PipelineRun:
    """The one full materialization: generated data -> raw -> dbt -> every segment sync."""
    from orchestration.demo_pipeline import run_demo_pipeline

    demo = run_demo_pipeline(AS_OF, instance=instance, **SAMPLE)
    manifest = json.loads((demo.sample_dir / "manifest.json").read_text())
    return PipelineRun(
        env=orch_env, demo=demo, manifest=manifest, emails_after=len(orch_env.emails())
    )


@pytest.fixture(scope="package")
def instance(orch_env: OrchestrationEnv):
    from dagster import DagsterInstance

    from orchestration.lib.instance import ensure_dagster_home

    inst = DagsterInstance.from_config(str(ensure_dagster_home()))
    yield inst
    inst.dispose()
