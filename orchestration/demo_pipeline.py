"""The whole pipeline in one process, through the same Dagster definitions the UI shows.

`onramp demo` calls `run_demo_pipeline`: sample data is generated into the landing folder, then
one Dagster run of job ``build_and_sync`` for the as-of day's partition loads it, builds every dbt
model with its tests and syncs every segment to the configured provider (the outbox by default).
The run is recorded in the local Dagster instance, so `onramp ui` shows the partition
materialized afterwards. Running it again for the same day writes no new email: email_sync's
ledger already holds every message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from onramp.errors import OnrampError
from onramp.settings import Settings

log = logging.getLogger(__name__)

LOAD_COUNTS = ("files", "files_skipped", "rows_loaded", "rows_duplicate", "rows_rejected")
SYNC_COUNTS = (
    "members", "entered", "exited", "sent", "would_send",
    "suppressed", "failed", "capped", "skipped",
)  # fmt: skip
FUNNEL_STAGES = ("not_integrated", "sandbox", "production", "dormant")


@dataclass
class DemoResult:
    """What one demo run did: enough for the demo to print its summary."""

    as_of: dt.date
    run_id: str
    sample_dir: Path
    outbox_dir: Path
    seconds: float
    generate_seconds: float
    generated: bool
    loads: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> rows_loaded, ...
    funnel: dict[str, int] = field(default_factory=dict)  # stage -> developers on the as-of day
    segments: dict[str, int] = field(default_factory=dict)  # segment -> members (every seg_ table)
    syncs: dict[str, dict[str, Any]] = field(default_factory=dict)  # segment -> counts + flags
    notifications: list[str] = field(default_factory=list)  # team messages, posted or not
    report_path: Path | None = None  # the funnel report's HTML page (the funnel_report asset)
    dry_run: bool = False
    log_path: Path | None = None  # stray console output of the run, when quiet
    destination: str = ""  # where the emails went, e.g. "through SendGrid (api.sendgrid.com)"

    @property
    def emails_sent(self) -> int:
        """Emails the provider accepted in this run (0 in a dry run)."""
        return sum(int(s.get("sent", 0)) for s in self.syncs.values())

    @property
    def held_back(self) -> list[str]:
        """Segments whose sends waited for fresh raw events."""
        return [name for name, s in self.syncs.items() if s.get("held_back")]


def _sample_matches(
    sample_dir: Path, as_of: dt.date, developers: int, days: int, seed: int
) -> bool:
    """The landing sample already holds this exact data set (generation is deterministic)."""
    try:
        manifest = json.loads((sample_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    same = (
        manifest.get("as_of") == as_of.isoformat()
        and manifest.get("developers") == developers
        and manifest.get("days") == days
        and manifest.get("seed") == seed
    )
    return same and all((sample_dir / f["path"]).exists() for f in manifest.get("files", []))


def _free_stale_pool_slots(instance: Any) -> None:
    """Release pool slots still held by runs that ended (e.g. a demo killed mid-sync), so the
    next run does not wait forever for the email provider pool."""
    from orchestration.lib.instance import EMAIL_POOL

    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    try:
        info = storage.get_concurrency_info(EMAIL_POOL)
    except Exception:  # the pool was never used on this instance
        return
    for slot in info.claimed_slots:
        run = instance.get_run_by_id(slot.run_id)
        if run is None or run.is_finished:
            log.warning("freeing pool %s slot of ended run %s", EMAIL_POOL, slot.run_id)
            storage.free_concurrency_slots_for_run(slot.run_id)


def _failure_line(result: Any) -> str:
    """The first failed step and the first error in its chain that is not Dagster's wrapper."""
    for event in result.all_events:
        if not (event.is_step_failure and event.step_failure_data):
            continue
        error = event.step_failure_data.error
        chosen = error
        while error is not None:
            if not (error.cls_name or "").startswith("Dagster"):
                chosen = error
                break
            error = error.cause
        lines = (chosen.message if chosen else "").strip().splitlines()
        return f"{event.step_key}: {lines[0] if lines else 'failed'}"
    return "see the run's logs in `onramp ui`"


def _metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def _funnel(engine: sa.Engine, as_of: dt.date) -> dict[str, int]:
    with engine.connect() as conn:
        if not conn.execute(sa.text("select to_regclass('marts.fct_stage_counts_daily')")).scalar():
            return {}
        rows = conn.execute(
            sa.text(
                "select stage, developers from marts.fct_stage_counts_daily "
                "where stage_date = :as_of"
            ),
            {"as_of": as_of},
        ).all()
    counts = {stage: 0 for stage in FUNNEL_STAGES}
    counts.update({str(stage): int(n) for stage, n in rows})
    return counts


def _segment_sizes(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text(
                "select table_name from information_schema.tables "
                "where table_schema = 'segments' and table_name like 'seg\\_%' "
                "order by table_name"
            )
        ).scalars()
        return {
            table[len("seg_") :]: int(
                conn.execute(sa.text(f'select count(*) from segments."{table}"')).scalar_one()
            )
            for table in list(tables)
        }


@dataclass
class _Executed:
    success: bool
    run_id: str
    seconds: float
    all_events: list
    materializations: list


def _report_progress(
    instance: Any, run_id: str, progress: Callable[[str], None], stop: threading.Event
) -> None:
    """Turn the run's step and materialization events into one-line progress messages."""
    from dagster import DagsterEventType

    kinds = {
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
        DagsterEventType.ASSET_MATERIALIZATION,
    }
    cursor = None
    started: dict[str, float] = {}
    while True:
        finished = stop.wait(1.0)
        try:
            connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=kinds)
        except Exception:  # the run is not stored yet
            connection = None
        for record in connection.records if connection else []:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            step = event.step_key or ""
            if event.event_type == DagsterEventType.STEP_START:
                started[step] = record.event_log_entry.timestamp
                progress(f"{step}: started")
            elif event.event_type == DagsterEventType.STEP_SUCCESS:
                took = record.event_log_entry.timestamp - started.get(step, 0.0)
                progress(f"{step}: done in {took:.1f} s")
            elif event.event_type == DagsterEventType.STEP_FAILURE:
                progress(f"{step}: failed")
            else:
                key = event.asset_key.to_user_string() if event.asset_key else ""
                values = event.event_specific_data.materialization.metadata
                if key.startswith("sync_"):
                    sent = getattr(values.get("sent"), "value", 0)
                    progress(f"{key}: {sent} sent")
        if connection is not None:
            cursor = connection.cursor
        if finished:
            return


def email_destination(settings: Settings) -> str:
    """Where the configured provider puts emails, for the demo's last line (no secret in it)."""
    from urllib.parse import urlparse

    if settings.email_provider == "sendgrid":
        host = settings.sendgrid_api_host or "https://api.sendgrid.com"
        return f"sent through SendGrid ({urlparse(host).netloc or host})"
    if settings.email_provider == "smtp":
        parsed = urlparse(settings.smtp_url or "")
        where = f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)
        return f"sent over SMTP to {where}"
    return f"written to the outbox {settings.outbox_dir}"


@contextlib.contextmanager
def _long_lived_setup() -> Iterator[None]:
    """Load Dagster, the definitions and the instance with the cyclic collector paused, then put
    all of it out of the collector's sight.

    They are some 500,000 objects (Dagster, dbt's modules, the asset graph) that live as long as
    the process. Built with the collector on, they cost about 1 s of repeated full collections
    (seven, each walking everything loaded so far); left in its sight, every full collection of
    the run walks them again. Both are Dagster's cost only: the same work without Dagster loads
    a third of it. The collector is back on (if it was) before the run starts.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _build_and_sync_job() -> Any:
    from orchestration.definitions import defs

    return defs.resolve_job_def("build_and_sync")


def _execute(
    job: Any,
    instance: Any,
    as_of: dt.date,
    dry_run: bool,
    log_level: str,
    progress: Callable[[str], None] | None,
) -> _Executed:
    from onramp.as_of import to_partition_key
    from orchestration.lib.automation import sync_run_tags
    from orchestration.lib.resources import run_config_for

    _free_stale_pool_slots(instance)
    # The demo's warehouse is new, so every sync is a first sync: email the sample members
    # (a real first `onramp sync` records members without emailing unless --initial send).
    run_config = run_config_for(dry_run=dry_run, initial="send")
    run_config["loggers"] = {"console": {"config": {"log_level": log_level.upper()}}}
    run_id = str(uuid.uuid4())
    stop = threading.Event()
    watcher = None
    if progress is not None:
        watcher = threading.Thread(
            target=_report_progress, args=(instance, run_id, progress, stop), daemon=True
        )
        watcher.start()
    started = time.perf_counter()
    try:
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            run_id=run_id,
            partition_key=to_partition_key(as_of),
            tags={**sync_run_tags(), "onramp/trigger": "demo"},
            raise_on_error=False,
        )
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(timeout=10)
    return _Executed(
        success=result.success,
        run_id=result.run_id,
        seconds=time.perf_counter() - started,
        all_events=list(result.all_events),
        materializations=list(result.get_asset_materialization_events()),
    )


def run_demo_pipeline(
    as_of: dt.date | str | None = None,
    *,
    developers: int = 300,
    days: int = 45,
    seed: int = 7,
    dry_run: bool = False,
    instance: Any = None,
    log_level: str = "CRITICAL",
    quiet: bool = True,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Generate sample data into the landing folder and materialize the whole asset graph.

    Settings come from the environment, as for every asset of the run (`Settings.from_env()`).
    `instance`: a DagsterInstance; default the local one in the settings' Dagster folder.
    `log_level`: of Dagster's console log for the run (the run's full log is in the instance and
    the UI; dbt's is in $ONRAMP_HOME/logs/dbt.log).
    `quiet`: anything a library still prints to stdout goes to `$ONRAMP_HOME/logs/demo.log`, so
    the demo prints only its own progress and summary.
    `progress`: called (from a watcher thread) with one line per step start/end and per sync,
    e.g. "dbt_models: started", "dbt_models: done in 21.4 s", "sync_welcome: 4 sent".
    Raises OnrampError with one line when the run fails.
    """
    from onramp.as_of import check_in_partitions, parse_as_of
    from onramp.warehouse import get_engine
    from orchestration.lib.instance import ensure_dagster_home, fast_local_storage
    from sample_data import generate

    fast_local_storage()
    settings = Settings.from_env()
    as_of = check_in_partitions(parse_as_of(as_of))
    sample_dir = settings.landing_dir / "sample"
    started = time.perf_counter()
    generated = False
    if not _sample_matches(sample_dir, as_of, developers, days, seed):
        generate(sample_dir, developers=developers, days=days, seed=seed, as_of=as_of)
        generated = True
    generate_seconds = time.perf_counter() - started

    engine = get_engine(settings)  # starts the embedded PostgreSQL before Dagster needs it
    own_instance = instance is None
    log_path = settings.home / "logs" / "demo.log" if quiet else None
    try:
        with contextlib.ExitStack() as stack:
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                out = stack.enter_context(log_path.open("w", encoding="utf-8"))
                stack.enter_context(contextlib.redirect_stdout(out))
            with _long_lived_setup():
                job = _build_and_sync_job()
                if own_instance:
                    from dagster import DagsterInstance

                    instance = DagsterInstance.from_config(str(ensure_dagster_home(settings)))
            result = _execute(job, instance, as_of, dry_run, log_level, progress)
    finally:
        if own_instance and instance is not None:
            instance.dispose()
    if not result.success:
        where = f" (logs in {settings.home / 'logs'})" if log_path else ""
        raise OnrampError(f"pipeline run {result.run_id} failed: {_failure_line(result)}{where}")

    demo = DemoResult(
        as_of=as_of,
        run_id=result.run_id,
        sample_dir=sample_dir,
        outbox_dir=settings.outbox_dir,
        seconds=result.seconds,
        generate_seconds=generate_seconds,
        generated=generated,
        dry_run=dry_run,
        log_path=log_path,
        destination=email_destination(settings),
    )
    for event in result.materializations:
        key = event.asset_key.to_user_string()
        values = _metadata_values(dict(event.materialization.metadata))
        if key == "funnel_report" and values.get("html"):
            demo.report_path = Path(str(values["html"]))
        elif key.startswith("raw_"):
            demo.loads[key[len("raw_") :]] = {k: int(values.get(k, 0)) for k in LOAD_COUNTS}
        elif key.startswith("sync_"):
            sync = {k: int(values.get(k, 0)) for k in SYNC_COUNTS}
            sync["held_back"] = bool(values.get("held_back"))
            sync["dry_run"] = bool(values.get("dry_run"))
            if values.get("team_notification"):
                demo.notifications.append(str(values["team_notification"]).replace("```", ""))
            demo.syncs[key[len("sync_") :]] = sync
    demo.funnel = _funnel(engine, as_of)
    demo.segments = _segment_sizes(engine)
    return demo
