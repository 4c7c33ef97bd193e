"""dbt, run in process: the models, tests and segments of dbt_project/ on the configured warehouse.

`onramp build`, Dagster and the tests all come through `run_dbt`, so they share one way of
connecting (the environment `onramp.warehouse.dbt_env()` gives the profile in
dbt_project/profiles.yml), one way of passing the as-of date (dbt var `as_of_date`) and one way of
reporting a failure: an `OnrampError` whose single line names the models and tests that failed.

With ONRAMP_WAREHOUSE=spark the same models run on Spark (the profile's `spark` output, dbt-spark's
session method): `run_dbt` starts onramp's SparkSession first, so dbt's `getOrCreate()` gets it,
creates the raw tables there instead of in PostgreSQL, and keeps dbt's artifacts in their own
target folder (`target_dir()`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import click

from onramp.as_of import AS_OF, parse_as_of
from onramp.errors import OnrampError
from onramp.manifest import PROFILES_DIR, PROJECT_DIR, manifest_path, target_dir
from onramp.settings import Settings

__all__ = [
    "PROFILES_DIR",
    "PROJECT_DIR",
    "DbtError",
    "DbtRun",
    "build",
    "manifest_path",
    "run_dbt",
    "target_dir",
]

log = logging.getLogger(__name__)

# Commands that never touch the warehouse: no raw schema, no connection needed.
_OFFLINE_COMMANDS = {"parse", "ls", "list", "deps", "clean", "debug"}
_FAILED = {"error", "fail", "runtime error"}


class DbtError(OnrampError):
    """dbt failed; the message is one line naming what failed."""


@dataclass
class DbtRun:
    """What a dbt invocation did, for a one-line summary and for callers that check results."""

    command: str
    success: bool
    seconds: float
    models_built: int = 0
    models_failed: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    results: Any = None  # dbt's own result object (RunExecutionResult, Manifest, ...)

    def summary(self) -> str:
        """One line: models built, tests passed/failed, seconds."""
        parts = [f"{self.models_built} models built"]
        if self.models_failed:
            parts.append(f"{self.models_failed} models failed")
        tests = f"{self.tests_passed} tests passed, {self.tests_failed} failed"
        if self.tests_warned:
            tests += f", {self.tests_warned} warned"
        parts.append(tests)
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        return f"dbt {self.command}: " + ", ".join(parts) + f" in {self.seconds:.1f} s"

    def failure_line(self, exception: Any = None) -> str:
        """One line naming what failed (the first three nodes), for DbtError and Dagster."""
        if self.failures:
            shown = "; ".join(self.failures[:3])
            more = f" and {len(self.failures) - 3} more" if len(self.failures) > 3 else ""
            return f"dbt {self.command} failed: {shown}{more}"
        reason = _first_line(exception) or "see dbt.log under $ONRAMP_HOME/logs"
        return f"dbt {self.command} failed: {reason}"


def _with_as_of(args: list[str], as_of: date | None) -> list[str]:
    """Add var as_of_date to the args, merged into a --vars the caller may already pass."""
    if as_of is None:
        return args
    args = list(args)
    extra = {"as_of_date": as_of.isoformat()}
    for flag in ("--vars",):
        if flag in args:
            i = args.index(flag)
            import yaml

            try:
                given = yaml.safe_load(args[i + 1]) or {}
            except (IndexError, yaml.YAMLError) as exc:
                raise DbtError(f"--vars must be a YAML/JSON mapping: {exc}") from exc
            if not isinstance(given, dict):
                raise DbtError("--vars must be a YAML/JSON mapping")
            args[i + 1] = json.dumps({**given, **extra})
            return args
    return [*args, "--vars", json.dumps(extra)]


@contextmanager
def _dbt_environment(settings: Settings | None, offline: bool) -> Iterator[None]:
    """The env dbt reads (profile connection, profiles dir), restored afterwards."""
    from onramp.warehouse import dbt_env, spark_dbt_env

    settings = settings or Settings.from_env()
    if settings.warehouse == "spark":
        env = spark_dbt_env()
    elif offline:
        # parse/ls do not connect, but profiles.yml still renders env_var('ONRAMP_PG_HOST').
        env = {
            "ONRAMP_DBT_TARGET": "default",
            "ONRAMP_PG_HOST": os.environ.get("ONRAMP_PG_HOST", "localhost"),
        }
    else:
        env = dbt_env(settings)
    env["DBT_PROFILES_DIR"] = str(PROFILES_DIR)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ensure_raw(settings: Settings) -> None:
    """Sources must resolve on an empty warehouse: create the raw schema before dbt runs. On
    Spark this also starts the process's SparkSession, the one dbt-spark's session method reuses."""
    if settings.warehouse == "spark":
        from onramp.raw_schema import ensure_raw_schema_spark
        from onramp.spark import spark_session

        ensure_raw_schema_spark(spark_session(settings))
        return
    from onramp.raw_schema import ensure_raw_schema
    from onramp.warehouse import get_engine

    ensure_raw_schema(get_engine(settings))


def _node_label(node: Any) -> str:
    resource = getattr(node, "resource_type", "node")
    resource = getattr(resource, "value", resource)
    return f"{resource} {getattr(node, 'name', '?')}"


def _first_line(text: Any) -> str:
    """The gist of a dbt message: its first line, plus the next when the first is a title."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    # "Database Error in model x (path)" only repeats the node: the reason is on the next line
    while len(lines) > 1 and " Error in " in lines[0]:
        lines = lines[1:]
    if not lines:
        return ""
    if len(lines) > 1 and lines[0].endswith(("Error", "error")) and len(lines[0]) < 40:
        return f"{lines[0]}: {lines[1]}"
    return lines[0]


def _tally(command: str, res: Any, seconds: float) -> DbtRun:
    run = DbtRun(command=command, success=bool(res.success), seconds=seconds, results=res.result)
    results = getattr(res.result, "results", None)
    if not results:
        return run
    for r in results:
        node = r.node
        status = str(getattr(r.status, "value", r.status)).lower()
        resource = str(getattr(node.resource_type, "value", node.resource_type))
        is_test = resource in ("test", "unit_test")
        if status in ("skipped", "no-op"):
            run.skipped += status == "skipped"
            continue
        if is_test:
            if status == "pass":
                run.tests_passed += 1
            elif status == "warn":
                run.tests_warned += 1
            else:
                run.tests_failed += 1
        elif resource in ("model", "seed", "snapshot"):
            if status in ("success", "pass"):
                run.models_built += 1
            else:
                run.models_failed += 1
        if status in _FAILED:
            detail = _first_line(r.message)
            if resource == "unit_test" and status == "fail":
                detail = "actual rows differ from expected"
            elif is_test and getattr(r, "failures", None):
                detail = f"{r.failures} failing row{'s' if r.failures != 1 else ''}"
            run.failures.append(f"{_node_label(node)} ({detail})" if detail else _node_label(node))
    return run


def log_dir(settings: Settings | None = None) -> Path:
    """Where dbt writes dbt.log: $DBT_LOG_PATH, else $ONRAMP_HOME/logs (never the console)."""
    configured = os.environ.get("DBT_LOG_PATH")
    if configured:
        return Path(configured)
    return (settings or Settings.from_env()).home / "logs"


def run_dbt(
    args: Sequence[str],
    as_of: date | None = None,
    settings: Settings | None = None,
    *,
    check: bool = True,
    on_node: Callable[[str, str], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
    quiet: bool = True,
) -> DbtRun:
    """Run one dbt command in process, e.g. run_dbt(["build", "--select", "segments"]).

    The CLI, Dagster and the tests all come through here. as_of sets var `as_of_date` (default:
    the project's, yesterday UTC). With check (default), a failed invocation raises DbtError with
    one line naming the failed nodes. on_node(unique_id, status) is called as each node finishes
    (progress display); on_event(msg) with each of dbt's event messages (Dagster turns the result
    events into materializations and check results). quiet keeps dbt's lines off the console:
    they go to dbt.log in `log_dir()`.
    """
    from dbt.cli.main import dbtRunner

    args = [str(a) for a in args]
    if not args:
        raise DbtError("no dbt command given")
    command = args[0]
    offline = command in _OFFLINE_COMMANDS
    settings = settings or Settings.from_env()
    if not offline:
        _ensure_raw(settings)
    full_args = [
        *_with_as_of(args, as_of),
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROFILES_DIR),
        "--target-path",
        str(target_dir(settings)),
        "--log-path",
        str(log_dir(settings)),
    ]
    if quiet and "--log-level" not in args:
        full_args += ["--log-level", "none"]
    callbacks: list[Callable[[Any], None]] = []
    if on_node is not None:

        def _callback(event: Any) -> None:
            if event.info.name == "NodeFinished":
                info = event.data.node_info
                on_node(info.unique_id, info.node_status)

        callbacks.append(_callback)
    if on_event is not None:
        callbacks.append(on_event)
    log.info("dbt %s", " ".join(args))
    started = time.monotonic()
    with _dbt_environment(settings, offline):
        res = dbtRunner(callbacks=callbacks).invoke(full_args)
    run = _tally(command, res, time.monotonic() - started)
    if check and not run.success:
        raise DbtError(run.failure_line(res.exception))
    return run


@click.command("build")
@click.option(
    "--as-of",
    "as_of",
    type=AS_OF,
    default=None,
    help="Last complete day of data (the Dagster partition key); default yesterday in UTC.",
)
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option(
    "--select",
    "-s",
    "select",
    multiple=True,
    help="dbt node selection (repeatable), e.g. --select segments or --select +seg_stage_sandbox.",
)
@click.option(
    "--vars",
    "dbt_vars",
    default=None,
    help="Extra dbt vars as YAML/JSON, e.g. '{stage_window_days: 14}'.",
)
def build(
    as_of: str | None, full_refresh: bool, select: tuple[str, ...], dbt_vars: str | None
) -> None:
    """Build the dbt models (staging, marts, segments) and run their tests."""
    day = parse_as_of(as_of)
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    for selector in select:
        args += ["--select", selector]
    if dbt_vars:
        args += ["--vars", dbt_vars]
    done = 0

    def progress(unique_id: str, status: str) -> None:
        nonlocal done
        done += 1
        if sys.stderr.isatty():
            name = unique_id.split(".")[-1][:60]
            click.echo(f"\r{done} nodes done: {name:<60}", nl=False, err=True)

    try:
        run = run_dbt(args, as_of=day, on_node=progress)
    finally:
        if done and sys.stderr.isatty():
            click.echo("\r" + " " * 80 + "\r", nl=False, err=True)
    click.echo(f"as of {day.isoformat()} (dbt.log in {log_dir()})")
    click.echo(run.summary())
    _echo_callers_without_record()


def _echo_callers_without_record() -> None:
    """One line after the summary when API callers in the events have no developer record: they
    are in the funnel but can never be emailed, and the line says what to load. (PostgreSQL only:
    on Spark the marts are not in the state database this reads.)"""
    from onramp.callers import callers_line, callers_without_record
    from onramp.warehouse import get_engine

    if Settings.from_env().warehouse == "spark":
        return

    line = callers_line(callers_without_record(get_engine(), after_build=True))
    if line:
        click.echo(line)


def _print_env() -> None:
    """`python -m onramp.dbt env`: shell exports of dbt's connection, for sqlfluff / plain dbt.

    sqlfluff's dbt templater compiles through a live connection, so `make lint` needs them:
    eval "$(python -m onramp.dbt env)" && sqlfluff lint dbt_project/models
    """
    import shlex

    from onramp.warehouse import dbt_env

    env = {**dbt_env(), "DBT_PROFILES_DIR": str(PROFILES_DIR)}
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")  # noqa: T201 - the output is the interface


if __name__ == "__main__":
    if sys.argv[1:] != ["env"]:
        sys.exit("usage: python -m onramp.dbt env")
    _print_env()
