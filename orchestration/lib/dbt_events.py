"""dbt run in process by the core's runner, its results turned into Dagster events.

Dagster's dbt assets call `onramp.dbt.run_dbt`, the runner `onramp build` uses: no dbt subprocess
and no second parse. dbt runs in a worker thread; its result events (one per model, seed, snapshot
and test) are handed over as they fire to dagster-dbt's own event translation, so each
materialization and asset-check result is recorded while dbt builds the next models (Dagster's
storage writes overlap dbt's waits on the warehouse) and looks exactly as dagster-dbt would
report it.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator
from dagster_dbt.asset_utils import get_subset_selection_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from onramp.dbt import run_dbt, target_dir
from onramp.settings import Settings

# dbt's events that carry one node's result (what dagster-dbt turns into asset events)
RESULT_EVENTS = {"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"}


def _subset_args(
    context: dg.AssetExecutionContext,
    manifest: Mapping[str, Any],
    translator: DagsterDbtTranslator,
) -> list[str]:
    """dbt selection for the assets and checks Dagster selected (nothing: the whole project)."""
    args, indirect = get_subset_selection_for_context(
        context=context,
        manifest=manifest,
        select="fqn:*",
        exclude=None,
        selector=None,
        dagster_dbt_translator=translator,
        current_dbt_indirect_selection_env=None,
    )
    if indirect:
        args += ["--indirect-selection", indirect]
    return args


def dbt_build_events(
    context: dg.AssetExecutionContext,
    manifest: Mapping[str, Any],
    translator: DagsterDbtTranslator,
    as_of: dt.date,
    settings: Settings,
) -> Iterator[Any]:
    """`dbt build` of the selected models for one as-of day; yields Outputs and check results.

    A failed model or test still yields what succeeded, then fails the step with the one line
    `onramp build` would print.
    """
    from dbt_common.events.functions import msg_to_dict

    results: queue.Queue[dict[str, Any] | None] = queue.Queue()
    outcome: dict[str, Any] = {}

    def collect(msg: Any) -> None:  # called on dbt's threads
        if msg.info.name in RESULT_EVENTS:
            results.put(msg_to_dict(msg))

    args = ["build", *_subset_args(context, manifest, translator)]

    def work() -> None:
        try:
            outcome["run"] = run_dbt(
                args, as_of=as_of, settings=settings, check=False, on_event=collect
            )
        except BaseException as exc:  # re-raised in the step's thread below
            outcome["error"] = exc
        finally:
            results.put(None)

    context.log.info(f"dbt {' '.join(args)} for as-of {as_of.isoformat()}")
    worker = threading.Thread(target=work, name="dbt-build", daemon=True)
    worker.start()
    while (raw := results.get()) is not None:
        message = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
        yield from message.to_default_asset_events(
            manifest=manifest,
            dagster_dbt_translator=translator,
            context=context,
            target_path=target_dir(),
        )
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    run = outcome["run"]
    context.log.info(run.summary())
    if not run.success:
        raise dg.Failure(description=run.failure_line())
