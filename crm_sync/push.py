"""Push one pump to HubSpot: diff in SQL, guard, create missing properties, upsert in batches of
100, record what HubSpot confirmed, associate contacts with their company.

The order is what makes a push safe to retry and to run twice:

1. A session advisory lock per pump: a second push of the same pump stops with one line.
2. The change set in SQL (`diff.build_changes`): rows whose values differ from what HubSpot last
   confirmed; records HubSpot rejected with the same values are not sent again.
3. The blast-radius guard (the first push of a pump is exempt: everything is new by definition).
4. Only when something changed: the property check (one GET per object when nothing is missing).
5. Batches of at most 100 in key order, each committed after HubSpot answers: confirmed rows update
   `crm_sync.confirmed`, rejected rows go to `crm_sync.rejected` with HubSpot's message, rows
   HubSpot neither confirmed nor rejected stay as they were and are sent by the next push. A crash
   mid-push loses nothing: unconfirmed rows are still in the next diff.
6. Associations for contacts whose company changed since the last confirmed association.

A dry run runs steps 2-3 in a transaction it rolls back and never builds a HubSpot client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import date
from typing import Any

import sqlalchemy as sa

from crm_sync import diff
from crm_sync.errors import BlastRadiusExceeded, CrmError, PushBusy, one_line
from crm_sync.hashing import hash_key
from crm_sync.hubspot import MAX_BATCH, HubSpotClient
from crm_sync.result import PushResult
from crm_sync.schema import ensure_crm_schema
from crm_sync.specs import PumpSpec
from onramp.errors import OnrampError
from onramp.freshness import EventFreshness, warehouse_events_freshness
from onramp.settings import Settings

log = logging.getLogger(__name__)

LOCK_CLASS = "onramp.crm_sync"
SAMPLE = 10


def client_from_settings(settings: Settings) -> HubSpotClient:
    """The HubSpot client of these settings (HUBSPOT_ACCESS_TOKEN, HUBSPOT_API_HOST)."""
    if not settings.hubspot_access_token:
        raise CrmError("HUBSPOT_ACCESS_TOKEN is not set (a HubSpot private app token)")
    return HubSpotClient(
        settings.hubspot_access_token,
        host=settings.hubspot_api_host,
        timeout_s=settings.http_timeout_s,
    )


def push_all(
    engine: sa.Engine,
    settings: Settings,
    specs: Iterable[PumpSpec],
    as_of: date,
    dry_run: bool = False,
    allow_large: bool = False,
    *,
    client: HubSpotClient | None = None,
    max_event_lag_hours: float = 24,
) -> list[PushResult | OnrampError]:
    """Push every pump in order (companies before the contacts associated with them). Stale raw
    events turn the push into a dry run marked `held_back`. A refused or busy pump does not stop
    the others; its error is returned in its place."""
    specs = list(specs)
    if settings.warehouse == "spark":
        # the pumps are built on Spark; the push's SQL (change set, run bookkeeping) reads
        # copies in the state database
        from onramp.spark_copy import copy_tables

        copy_tables(engine, settings, [f"{s.schema}.{s.table}" for s in specs])
    freshness = warehouse_events_freshness(engine, as_of, max_event_lag_hours, settings)
    held_back = not freshness.fresh
    if held_back:
        log.warning("CRM push held back: %s", freshness.describe())
    if client is None and not (dry_run or held_back):
        client = client_from_settings(settings)
    by_object = {s.object_type: s for s in specs}
    results: list[PushResult | OnrampError] = []
    for spec in specs:
        target = by_object.get(spec.associate_object) if spec.associate_object else None
        try:
            results.append(
                push_pump(
                    engine,
                    settings,
                    spec,
                    as_of,
                    dry_run=dry_run or held_back,
                    allow_large=allow_large,
                    client=None if (dry_run or held_back) else client,
                    associate_with=target,
                    freshness=freshness,
                )
            )
        except CrmError as exc:  # a refused, busy or missing pump stops only itself
            results.append(exc)
    return results


def push_pump(
    engine: sa.Engine,
    settings: Settings,
    spec: PumpSpec,
    as_of: date,
    *,
    dry_run: bool = False,
    allow_large: bool = False,
    client: HubSpotClient | None = None,
    associate_with: PumpSpec | None = None,
    freshness: EventFreshness | None = None,
) -> PushResult:
    """Push one pump (see the module docstring for the order); a dry run needs no client."""
    started = time.perf_counter()
    result = PushResult(pump=spec.model, object_type=spec.object_type, as_of=as_of, dry_run=dry_run)
    if freshness is not None and not freshness.fresh:
        result.status = "held_back"
        result.notes.append(f"held back: {freshness.describe()}")
    if not dry_run and client is None:
        raise CrmError("a push needs a HubSpot client (or dry_run)")
    requests_before = client.requests if client else 0
    limited_before = client.rate_limited if client else 0
    seconds_before = client.seconds if client else 0.0
    with engine.connect() as conn:
        if dry_run:
            _dry_run(conn, settings, spec, allow_large, associate_with, result)
        else:
            assert client is not None
            _push_locked(conn, settings, spec, as_of, allow_large, client, associate_with, result)
    if client is not None:
        result.requests = client.requests - requests_before
        result.rate_limited = client.rate_limited - limited_before
        result.hubspot_seconds = client.seconds - seconds_before
    result.seconds = time.perf_counter() - started
    log.info(
        "crm push %s%s: rows=%d changed=%d pushed=%d rejected=%d unconfirmed=%d associated=%d "
        "requests=%d",
        spec.model,
        " (dry run)" if dry_run else "",
        result.rows,
        result.changed,
        result.pushed,
        result.rejected,
        result.unconfirmed,
        result.associations,
        result.requests,
    )
    return result


def _decide(
    conn: sa.Connection, settings: Settings, spec: PumpSpec, allow_large: bool, r: PushResult
) -> None:
    """Diff and blast-radius guard (inside the caller's transaction)."""
    diff.check_pump_table(conn, spec)
    t0 = time.perf_counter()
    d = diff.build_changes(conn, spec)
    r.diff_seconds = time.perf_counter() - t0
    r.rows, r.changed, r.held_rejected, r.first_push = (
        d.rows,
        d.changed,
        d.held_rejected,
        d.first_push,
    )
    size = max(d.rows, d.confirmed_before, 1)
    if (
        not allow_large
        and not d.first_push
        and d.changed >= settings.blast_radius_min_members
        and d.changed > settings.blast_radius_share * size
    ):
        raise BlastRadiusExceeded(
            f"pump {spec.model}: {d.changed:,} of {size:,} {spec.object_type} would change "
            f"({d.changed / size:.0%} > {settings.blast_radius_share:.0%}); refusing to push, "
            "rerun with --allow-large if this change is expected"
        )
    for key, new, old in diff.sample_changes(conn, spec, SAMPLE):
        parts = [
            f"{name} {old.get(name, '∅') or '∅'} -> {value or '∅'}"
            for name, value in new.items()
            if old.get(name) != value
        ]
        r.sample.append(f"{hash_key(key)}: " + "; ".join(parts))
    if r.held_rejected:
        r.notes.append(f"{r.held_rejected} rejected before with the same values, not sent again")


def _dry_run(
    conn: sa.Connection,
    settings: Settings,
    spec: PumpSpec,
    allow_large: bool,
    associate_with: PumpSpec | None,
    r: PushResult,
) -> None:
    tx = conn.begin()
    try:
        ensure_crm_schema(conn)  # rolled back with the rest
        _decide(conn, settings, spec, allow_large, r)
        if spec.associate_column and associate_with is not None:
            r.associations = conn.execute(
                sa.text(f"select count(*) from ({diff.pending_associations_sql(spec, True)}) as a"),
                {"pump": spec.model, "target": associate_with.model},
            ).scalar_one()
    finally:
        tx.rollback()


def _push_locked(
    conn: sa.Connection,
    settings: Settings,
    spec: PumpSpec,
    as_of: date,
    allow_large: bool,
    client: HubSpotClient,
    associate_with: PumpSpec | None,
    r: PushResult,
) -> None:
    with conn.begin():
        ensure_crm_schema(conn)
    got = conn.execute(
        sa.text("select pg_try_advisory_lock(hashtext(:cls), hashtext(:pump))"),
        {"cls": LOCK_CLASS, "pump": spec.model},
    ).scalar()
    conn.commit()
    if not got:
        raise PushBusy(f"pump {spec.model} is being pushed by another run; try again later")
    try:
        r.run_id = _start_run(conn, spec.model, as_of)
        try:
            with conn.begin():
                _decide(conn, settings, spec, allow_large, r)
            if r.changed:
                r.properties_created = client.ensure_properties(
                    spec.object_type, [spec.id_property_spec, *spec.properties]
                )
                _push_changes(conn, spec, client, r)
            if spec.associate_column and associate_with is not None:
                _associate(conn, spec, associate_with, client, r)
            _finish_run(conn, r, "ok", "; ".join(r.notes) or None)
        except BlastRadiusExceeded as exc:
            _finish_run(conn, r, "refused", str(exc))
            raise
        except Exception as exc:
            _finish_run(conn, r, "error", one_line(exc))
            raise
    finally:
        try:
            conn.rollback()
            conn.execute(sa.text("drop table if exists _crm_changes"))
            conn.execute(
                sa.text("select pg_advisory_unlock(hashtext(:cls), hashtext(:pump))"),
                {"cls": LOCK_CLASS, "pump": spec.model},
            )
            conn.commit()
        except sa.exc.DBAPIError:  # connection gone: the server dropped lock and temp table
            log.debug("crm push cleanup failed; connection closed", exc_info=True)


def _push_changes(
    conn: sa.Connection, spec: PumpSpec, client: HubSpotClient, r: PushResult
) -> None:
    """Upsert `_crm_changes` in key order, MAX_BATCH rows a request, committing each answer."""
    last = ""
    while True:
        rows = conn.execute(
            sa.text(
                "select record_key, properties from _crm_changes where record_key > :last "
                "order by record_key limit :n"
            ),
            {"last": last, "n": MAX_BATCH},
        ).all()
        conn.commit()
        if not rows:
            return
        last = rows[-1][0]
        outcome = client.upsert(
            spec.object_type, spec.id_property, [(row[0], dict(row[1])) for row in rows]
        )
        with conn.begin():
            _confirm(conn, spec, r.run_id, outcome.confirmed)
            _reject(conn, spec, r.run_id, outcome.rejected)
        r.pushed += len(outcome.confirmed)
        r.rejected += len(outcome.rejected)
        r.unconfirmed += len(outcome.unconfirmed)
        for key, (_status, message) in outcome.rejected.items():
            line = f"{hash_key(key)}: {message}"
            log.warning("HubSpot rejected %s %s", spec.object_type, line)
            if len(r.rejections) < SAMPLE:
                r.rejections.append(line)


def _confirm(conn: sa.Connection, spec: PumpSpec, run_id: int | None, ids: dict[str, str]) -> None:
    if not ids:
        return
    params = {"pump": spec.model, "run": run_id, "keys": list(ids), "ids": list(ids.values())}
    conn.execute(
        sa.text(
            """
            insert into crm_sync.confirmed as s (pump, record_key, properties, hubspot_id,
                confirmed_at, run_id)
            select :pump, c.record_key, c.properties, t.hubspot_id, now(), :run
            from unnest(cast(:keys as text[]), cast(:ids as text[])) as t(record_key, hubspot_id)
            join _crm_changes as c on c.record_key = t.record_key
            on conflict (pump, record_key) do update set
                properties = excluded.properties,
                hubspot_id = excluded.hubspot_id,
                confirmed_at = excluded.confirmed_at,
                run_id = excluded.run_id
            """
        ),
        params,
    )
    conn.execute(
        sa.text(
            "delete from crm_sync.rejected where pump = :pump "
            "and record_key = any(cast(:keys as text[]))"
        ),
        params,
    )


def _reject(
    conn: sa.Connection, spec: PumpSpec, run_id: int | None, rejected: dict[str, tuple[int, str]]
) -> None:
    if not rejected:
        return
    conn.execute(
        sa.text(
            """
            insert into crm_sync.rejected as j (pump, record_key, properties, status, message,
                rejected_at, run_id)
            select :pump, c.record_key, c.properties, t.status, t.message, now(), :run
            from unnest(cast(:keys as text[]), cast(:statuses as integer[]),
                        cast(:messages as text[])) as t(record_key, status, message)
            join _crm_changes as c on c.record_key = t.record_key
            on conflict (pump, record_key) do update set
                properties = excluded.properties,
                status = excluded.status,
                message = excluded.message,
                rejected_at = excluded.rejected_at,
                run_id = excluded.run_id
            """
        ),
        {
            "pump": spec.model,
            "run": run_id,
            "keys": list(rejected),
            "statuses": [s for s, _ in rejected.values()],
            "messages": [m for _, m in rejected.values()],
        },
    )


def _associate(
    conn: sa.Connection,
    spec: PumpSpec,
    target: PumpSpec,
    client: HubSpotClient,
    r: PushResult,
) -> None:
    """Default associations for contacts whose company changed since the last confirmed one."""
    assert spec.associate_object is not None
    rows = conn.execute(
        sa.text(diff.pending_associations_sql(spec, False)),
        {"pump": spec.model, "target": target.model},
    ).all()
    conn.commit()
    if not rows:
        return
    company_of = {row[0]: row[3] for row in rows}
    done, failed = client.associate(
        spec.object_type, spec.associate_object, [(row[0], row[1], row[2]) for row in rows]
    )
    if done:
        with conn.begin():
            conn.execute(
                sa.text(
                    """
                    update crm_sync.confirmed as s set association_key = t.association_key
                    from unnest(cast(:keys as text[]), cast(:assocs as text[]))
                        as t(record_key, association_key)
                    where s.pump = :pump and s.record_key = t.record_key
                    """
                ),
                {"pump": spec.model, "keys": list(done), "assocs": [company_of[k] for k in done]},
            )
    r.associations = len(done)
    r.association_failures = len(failed)
    if failed:
        first = next(iter(failed.items()))
        r.notes.append(
            f"{len(failed)} association(s) failed, retried next push "
            f"(first: {hash_key(first[0])}: {first[1]})"
        )


def _start_run(conn: sa.Connection, pump: str, as_of: date) -> int:
    with conn.begin():
        # we hold the pump lock, so any other "running" row is a run that died
        conn.execute(
            sa.text(
                "update crm_sync.runs set status = 'crashed', finished_at = now() "
                "where pump = :pump and status = 'running'"
            ),
            {"pump": pump},
        )
        return conn.execute(
            sa.text(
                "insert into crm_sync.runs (pump, as_of, status) values (:pump, :as_of, 'running') "
                "returning run_id"
            ),
            {"pump": pump, "as_of": as_of},
        ).scalar_one()


def _finish_run(conn: sa.Connection, r: PushResult, status: str, message: str | None) -> None:
    """Record how the run ended; never raises, so the original error is the one reported."""
    try:
        conn.rollback()
        with conn.begin():
            conn.execute(
                sa.text(
                    """
                    update crm_sync.runs set status = :status, finished_at = now(),
                        rows_total = :rows, changed = :changed, pushed = :pushed,
                        rejected = :rejected, unconfirmed = :unconfirmed,
                        associated = :associated, requests = :requests, message = :message
                    where run_id = :run_id
                    """
                ),
                {
                    "status": status,
                    "run_id": r.run_id,
                    "rows": r.rows,
                    "changed": r.changed,
                    "pushed": r.pushed,
                    "rejected": r.rejected,
                    "unconfirmed": r.unconfirmed,
                    "associated": r.associations,
                    "requests": r.requests,
                    "message": message,
                },
            )
    except sa.exc.DBAPIError:
        log.warning("could not record the end of CRM push run %s", r.run_id, exc_info=True)


def summary_metadata(result: PushResult) -> dict[str, Any]:
    """Counts for Dagster metadata and the demo (no key, no token, no address)."""
    return {
        "rows": result.rows,
        "changed": result.changed,
        "pushed": 0 if result.dry_run else result.pushed,
        "would_push": result.changed if result.dry_run else 0,
        "rejected": result.rejected,
        "unconfirmed": result.unconfirmed,
        "associated": result.associations,
        "requests": result.requests,
        "rate_limited": result.rate_limited,
        "properties_created": ", ".join(result.properties_created) or "none",
        "dry_run": result.dry_run,
        "held_back": result.status == "held_back",
        "as_of": result.as_of.isoformat(),
    }
