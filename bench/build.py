"""Bench: the full dbt build against a hand-written floor, and an incremental run after one day.

    python bench/build.py                       # 10,000,000 events, 20,000 developers, 60 days
    python bench/build.py --events 1000000 --developers 2000

In its own embedded PostgreSQL (pgserver, in a temp dir), it generates the events directly in SQL
(one INSERT per day, so rows land in time order as real loads do), then prints:

1. the full `dbt build` (every model and test, --full-refresh) against the floor: one
   hand-written statement producing fct_developer_daily_usage's columns (counts by status
   class, 429s, p50/p95 latency, bytes, first/last call, distinct normalised routes) straight
   from raw.api_events, with the same route lookup and work_mem as the models, materialised
   the way dbt materialises a table. Goal: build <= 1.5 x floor.
2. after one more day of events (about 1/60 of the data), an incremental `dbt build`: the sum
   of model execution times from run_results.json as a ratio to the full build's. Goal <= 0.10.
   The same incremental build runs three times (--incremental-runs) and the median counts.
   Both builds run with one dbt thread (--threads): a model's execution time is then its own
   work. With more threads than the machine has cores (the embedded PostgreSQL does the work on
   the same cores), models that run at once wait for each other and the sum of their times
   counts the overlap: on 2 cores the daily run's models sum 30-80% more at 2-4
   threads, for 1-2 s less wall time, while the full build's few big models hardly overlap.

    python bench/build.py --warehouse spark --events 1000000 --developers 2000

also builds the same project on Spark (dbt-spark's session method, local mode, $ONRAMP_SPARK_MASTER)
from the same generated rows, copied into Spark's raw tables (PostgreSQL COPY to CSV, read by
Spark), and prints its full build and its incremental build after the same extra day beside
PostgreSQL's, with the incremental-to-full ratio (goal <= 0.10 on Spark too).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

log = logging.getLogger("bench.build")

ROUTES = [
    # (path prefix, id kind, weight): id kind n = numeric id, h = hex token, - = none
    ("/v1/messages", "-", 18),
    ("/v1/messages/", "h", 10),
    ("/v1/users/", "n", 14),
    ("/v1/users/me", "-", 6),
    ("/v1/payments/", "n", 9),
    ("/v1/payments", "-", 5),
    ("/v1/search", "-", 8),
    ("/v1/orders/", "n", 8),
    ("/v1/files/", "h", 4),
    ("/v1/webhooks", "-", 3),
    ("/v1/webhooks/", "n", 2),
    ("/v1/sessions/", "h", 5),
    ("/v1/usage", "-", 4),
    ("/v1/batch", "-", 2),
    ("/v0/status", "-", 2),
]
PROMOTED = ["/v1/webhooks", "/v1/batch", "/v1/files/{id}"]

# normalize_route() of dbt_project/macros/cross_db.sql, as it compiles on PostgreSQL
ROUTE_SQL = (
    "regexp_replace(split_part(split_part(p, '?', 1), '#', 1), "
    "'/([0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    "|[0-9a-fA-F]{16,})(?=/|$)', '/{id}', 'g')"
)
# The floor: fct_developer_daily_usage's columns straight from raw.api_events in one statement,
# with the same route lookup (regex once per distinct path) and the same work_mem as the models.
FLOOR_SQL = f"""
create table bench.floor_daily_usage as
with
paths as (
    select distinct coalesce(path, '') as p from raw.api_events where occurred_at < :end_at
),
routes as (
    select p, case when p = '' then '(none)' else {ROUTE_SQL} end as route from paths
),
route_days as (
    select developer_id, usage_date, count(*) as distinct_routes
    from (
        select distinct e.developer_id, cast(timezone('UTC', e.occurred_at) as date) as usage_date,
            routes.route
        from raw.api_events as e
        join routes on coalesce(e.path, '') = routes.p
        where e.occurred_at < :end_at
    ) as r
    group by 1, 2
),
daily as (
    select
        developer_id,
        cast(timezone('UTC', occurred_at) as date) as usage_date,
        count(*) as events,
        count(case when status_code < 400 then 1 end) as successful_events,
        count(case when status_code between 400 and 499 then 1 end) as client_error_events,
        count(case when status_code >= 500 then 1 end) as server_error_events,
        count(case when status_code = 429 then 1 end) as events_429,
        count(case when environment = 'production' then 1 end) as production_environment_events,
        count(case when environment = 'sandbox' then 1 end) as sandbox_environment_events,
        percentile_cont(0.5) within group (order by latency_ms) as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms) as latency_p95_ms,
        sum(request_bytes) as request_bytes,
        sum(response_bytes) as response_bytes,
        min(occurred_at) as first_event_at,
        min(case when status_code < 400 then occurred_at end) as first_success_at,
        max(occurred_at) as last_event_at
    from raw.api_events
    where occurred_at < :end_at
    group by 1, 2
)
select daily.*, coalesce(route_days.distinct_routes, 0) as distinct_routes
from daily
left join route_days using (developer_id, usage_date)
"""


def _route_case() -> str:
    """SQL picking a path from ROUTES by weight, from a uniform r in [0, 1)."""
    total = sum(w for _, _, w in ROUTES)
    parts, acc = [], 0
    for prefix, kind, weight in ROUTES:
        acc += weight
        if kind == "n":
            path = f"'{prefix}' || (dev * 13 + (k % 25))"
        elif kind == "h":
            path = f"'{prefix}' || substr(md5(dev::text || '-' || (k % 6)), 1, 24)"
        else:
            path = f"'{prefix}'"
        parts.append(f"when r < {acc / total:.6f} then {path}")
    return "case " + " ".join(parts) + f" else '{ROUTES[0][0]}' end"


def generate(engine: sa.Engine, events: int, developers: int, days: int, as_of: date) -> int:
    """Developers, endpoints, incidents and `events` API calls over `days` days ending on as_of."""
    start = as_of - timedelta(days=days - 1)
    active = max(1, int(developers * 0.7))  # 30% never call
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into raw.load_batches (kind, path, checksum, format, status) "
                "values ('api_events', 'bench', 'bench', 'jsonl', 'loaded')"
            )
        )
        conn.execute(
            sa.text(
                """
                insert into raw.developers (
                    developer_id, email, name, company_id, company_name, role, signed_up_at,
                    plan, monthly_quota, timezone, marketing_opt_in, batch_id, line_number
                )
                select
                    'dev_' || i, 'dev' || i || '@example.com', 'Developer ' || i, 'cmp_' || (i / 3),
                    'Company ' || (i / 3),
                    (array['engineering', 'product', 'marketing', '', 'executive',
                           'Customer Success', 'support', 'sales'])[1 + i % 8],
                    -- heavy callers (low ids) signed up before the window, the rest during it
                    cast(:start as timestamptz) - interval '20 days'
                        + (i::float / :devs) * (:days + 20) * interval '1 day',
                    (array['free', 'startup', 'growth'])[1 + i % 3],
                    case when i % 3 = 1 then 20000 when i % 3 = 2 then 1000000 end,
                    'UTC', i % 4 != 0, 1, i
                from generate_series(0, :devs - 1) as i
                """
            ),
            {"start": start, "devs": developers, "days": days},
        )
        for n, (prefix, kind, _) in enumerate(ROUTES):
            route = prefix + ("{id}" if kind != "-" else "")
            conn.execute(
                sa.text(
                    "insert into raw.endpoints (route, feature_name, promoted, docs_url, batch_id,"
                    " line_number) values (:r, :f, :p, :d, 1, :n)"
                ),
                {
                    "r": route,
                    "f": route.split("/")[2].title(),
                    "p": route in PROMOTED,
                    "d": f"https://docs.example.com{prefix}",
                    "n": n,
                },
            )
        for n, (day_offset, route) in enumerate(
            [(3, "/v1/payments/{id}"), (1, "/v1/messages"), (0, "/v1/webhooks/%")]
        ):
            conn.execute(
                sa.text(
                    "insert into raw.incidents (incident_id, title, started_at, ended_at,"
                    " affected_route, batch_id, line_number)"
                    " values (:id, :t, cast(:s as timestamptz),"
                    " cast(:s as timestamptz) + interval '45 minutes',"
                    " :r, 1, :n)"
                ),
                {
                    "id": f"INC-{n}",
                    "t": f"Incident {n}",
                    "s": f"{as_of - timedelta(days=day_offset)}T10:00:00+00:00",
                    "r": route,
                    "n": n,
                },
            )
    total = 0
    per_day = events // days
    for offset in range(days):
        total += insert_day(engine, start + timedelta(days=offset), per_day, developers, active)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze raw.api_events"))
        conn.execute(sa.text("vacuum analyze raw.developers"))
    return total


def brin_stray_pages(engine: sa.Engine) -> int:
    """Heap pages a BRIN scan for a time before every event still reads: the pages of ranges
    not summarized yet, or of ranges a cancelled summarization left matching every scan. 0 when
    the index is healthy and vacuumed; otherwise every time-window read pays for them."""
    with engine.begin() as conn:
        conn.execute(sa.text("set local enable_seqscan = off"))
        conn.execute(sa.text("set local max_parallel_workers_per_gather = 0"))
        plan = conn.execute(
            sa.text(
                "explain (analyze, format json, timing off) select count(*) from raw.api_events"
                " where occurred_at < '-infinity'"
            )
        ).scalar_one()

    def heap_blocks(node: dict) -> int:
        own = node.get("Lossy Heap Blocks", 0) + node.get("Exact Heap Blocks", 0)
        return own + sum(heap_blocks(child) for child in node.get("Plans", []))

    return heap_blocks(plan[0]["Plan"])


def insert_day(engine: sa.Engine, day: date, n: int, developers: int, active: int) -> int:
    """n calls on one UTC day, skewed: a few developers make most of them (power-law ids)."""
    sql = f"""
    insert into raw.api_events (
        event_id, occurred_at, developer_id, company_id, method, path, status_code, latency_ms,
        request_bytes, response_bytes, environment, api_key_id, user_agent, ip, extras, batch_id
    )
    select
        'evt_' || :day_key || '_' || k,
        ts,
        'dev_' || dev,
        'cmp_' || (dev / 3),
        case when r2 < 0.7 then 'GET' else 'POST' end,
        path || case when r2 < 0.15 then '?page=' || (k % 5) else '' end,
        case
            when r3 < 0.02 then 429 when r3 < 0.05 then 404 when r3 < 0.06 then 401
            when r3 < 0.075 then 500 else 200
        end,
        round((20 + power(r2, 3) * 900)::numeric, 1),
        (r2 * 2000)::int,
        (r3 * 20000)::int,
        case when dev < :devs / 100 then 'production' else 'sandbox' end,
        'key_' || dev,
        'bench/1.0',
        '192.0.2.' || (dev % 250),
        null,
        1
    from (
        select
            k, dev, r, r2, r3,
            cast(:day as timestamptz) + ((k - 1)::float / :n) * interval '1 day' as ts,
            {_route_case()} as path
        from (
            select
                k,
                floor(power(random(), 4) * :active)::int as dev,
                random() as r, random() as r2, random() as r3
            from generate_series(1, :n) as k
        ) as picked
    ) as calls
    -- nobody calls before signing up
    where ts >= cast(:start as timestamptz) - interval '20 days'
        + (dev::float / :devs) * (:days + 20) * interval '1 day'
    order by ts
    """
    params = {
        "day": f"{day}T00:00:00+00:00",
        "day_key": day.strftime("%Y%m%d"),
        "n": n,
        "devs": developers,
        "active": active,
        "start": _START[0],
        "days": _START[1],
    }
    with engine.begin() as conn:
        return conn.execute(sa.text(sql), params).rowcount


_START: list = [None, None]  # (first day, days) of the generated window; insert_day needs it


RAW_COPIED = ("developers", "endpoints", "incidents", "api_events")


def copy_raw_to_spark(engine: sa.Engine, spark: Any, work: Path, events_where: str) -> None:
    """The PostgreSQL raw rows (the events matching `events_where`, and the other raw tables
    when it is the first copy) appended to Spark's raw tables: PostgreSQL COPY to a CSV file,
    Spark's CSV reader, one INSERT per table. Timestamps travel as ISO text with their offset,
    extras as JSON text; event_date is the UTC day of occurred_at (the partition)."""
    import psycopg

    from onramp.warehouse import database_url

    folder = work / "copy"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    first_copy = spark.table("raw.developers").limit(1).count() == 0
    for table in RAW_COPIED:
        if table != "api_events" and not first_copy:
            continue
        fields = spark.table(f"raw.{table}").schema.fields
        exported = [
            "cast(timezone('UTC', occurred_at) as date)"
            if f.name == "event_date"
            else f"cast({f.name} as text)"
            if f.dataType.typeName() == "string"
            else f.name
            for f in fields
        ]
        where = f" where {events_where}" if table == "api_events" else ""
        path = folder / f"{table}.csv"
        copy_sql = f"copy (select {', '.join(exported)} from raw.{table}{where}) to stdout"
        with psycopg.connect(database_url()) as conn, conn.cursor() as cur, path.open("wb") as out:
            with cur.copy(copy_sql + " with (format csv)") as copy:
                for chunk in copy:
                    out.write(chunk)
        schema = ", ".join(f"`{f.name}` string" for f in fields)
        frame = spark.read.csv(str(path), schema=schema, multiLine=True, escape='"')
        frame.createOrReplaceTempView("bench_copy")
        casts = ", ".join(f"cast(`{f.name}` as {f.dataType.simpleString()})" for f in fields)
        spark.sql(f"insert into raw.{table} select {casts} from bench_copy")
    shutil.rmtree(folder, ignore_errors=True)


def bench_spark(engine: sa.Engine, work: Path, as_of: date) -> tuple[float, float, float, float]:
    """The same full and incremental builds on Spark: (full wall, full model time, incremental
    wall, incremental model time), the extra day of events copied between the two."""
    import dataclasses

    from onramp.dbt import run_dbt, target_dir
    from onramp.raw_schema import ensure_raw_schema_spark
    from onramp.settings import Settings
    from onramp.spark import spark_session

    settings = dataclasses.replace(Settings.from_env(), warehouse="spark")
    t0 = time.monotonic()
    spark = spark_session(settings)
    ensure_raw_schema_spark(spark)
    print(f"spark: session in {time.monotonic() - t0:.1f} s ({settings.spark_master})")
    next_day = f"'{as_of + timedelta(days=1)}T00:00:00+00:00'"
    t0 = time.monotonic()
    copy_raw_to_spark(engine, spark, work, f"occurred_at < {next_day}")
    events = spark.table("raw.api_events").count()
    print(f"  {events:,} events copied to Spark in {time.monotonic() - t0:.0f} s")
    target = target_dir(settings)

    t0 = time.monotonic()
    full = run_dbt(["build", "--full-refresh"], as_of=as_of, settings=settings)
    full_wall = time.monotonic() - t0
    full_results = run_results(target)
    full_models, n_models = model_seconds(full_results)
    print(
        f"spark full dbt build ({n_models} models, {full.tests_passed} tests passed, "
        f"{full.tests_failed} failed): {full_wall:.1f} s wall, {full_models:.1f} s model time"
    )
    print(f"  slowest models of the spark full build: {slowest(full_results, 12, True)}")
    copy_raw_to_spark(engine, spark, work, f"occurred_at >= {next_day}")
    t0 = time.monotonic()
    run_dbt(["build"], as_of=as_of + timedelta(days=1), settings=settings)
    incr_wall = time.monotonic() - t0
    results = run_results(target)
    incr_models, _ = model_seconds(results)
    print(
        f"spark incremental dbt build after one more day: {incr_wall:.1f} s wall, "
        f"{incr_models:.2f} s model time"
    )
    ratio = incr_models / full_models
    print(f"  spark incremental / full model time = {ratio:.3f}  (goal <= 0.10)")
    print(f"  spark incremental / full wall time = {incr_wall / full_wall:.3f}")
    print(f"  slowest nodes of the spark incremental build: {slowest(results)}")
    print(f"  slowest models of the spark incremental build: {slowest(results, 12, True)}")
    return full_wall, full_models, incr_wall, incr_models


def model_seconds(results: list[dict]) -> tuple[float, int]:
    """Sum of the model execution times of run_results.json's results, and the number of models."""
    models = [r for r in results if r["unique_id"].startswith("model.")]
    return sum(r["execution_time"] for r in models), len(models)


def slowest(results: list[dict], n: int = 8, models_only: bool = False) -> str:
    """The n slowest nodes (or models) of run_results.json's results, with their seconds."""
    if models_only:
        results = [r for r in results if r["unique_id"].startswith("model.")]
    slow = sorted(results, key=lambda r: -r["execution_time"])[:n]
    return ", ".join(f"{r['unique_id'].split('.')[2]} {r['execution_time']:.2f}s" for r in slow)


def run_results(target: Path) -> list[dict]:
    """The results of the last dbt invocation (run_results.json)."""
    return json.loads((target / "run_results.json").read_text())["results"]


def add_day(engine: sa.Engine, day: date, total: int, days: int, developers: int) -> int:
    """One more day of events (about 1/days of the data), as a daily load brings."""
    return insert_day(engine, day, total // days, developers, max(1, int(developers * 0.7)))


def strategies(target: Path) -> list[str]:
    """How each model of the last manifest is materialised (with its strategy and key)."""
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    out = []
    for node in sorted(nodes, key=lambda n: n["name"]):
        if node["resource_type"] != "model":
            continue
        config = node["config"]
        how = config["materialized"]
        if how == "incremental":
            how += f" {config.get('incremental_strategy')} on {config.get('unique_key')}"
        out.append(f"{node['name']}: {how}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--developers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="Keep the temp PostgreSQL dir.")
    parser.add_argument("--floor-runs", type=int, default=2, help="Runs of the floor (best kept).")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="dbt threads of both builds (ONRAMP_DBT_THREADS; 0 keeps the project's default).",
    )
    parser.add_argument(
        "--incremental-runs",
        type=int,
        default=3,
        help="Runs of the same incremental build (the median counts).",
    )
    parser.add_argument(
        "--reuse", type=Path, help="Reuse the data of an earlier --keep run (its temp dir)."
    )
    parser.add_argument(
        "--warehouse",
        choices=("postgres", "spark"),
        default="postgres",
        help="spark: also build on Spark (local mode) from the same rows, beside PostgreSQL.",
    )
    parser.add_argument(
        "--spark-only",
        action="store_true",
        help="With --warehouse spark: generate the rows in PostgreSQL but build only on Spark.",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import pgserver

    from ingest.schema import ensure_raw_schema
    from onramp.dbt import run_dbt

    work = args.reuse or Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    server = pgserver.get_server(work / "pg", cleanup_mode=None if args.keep else "stop")
    os.environ.update(
        {
            "ONRAMP_HOME": str(work),
            "ONRAMP_DATABASE_URL": server.get_uri("postgres"),
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
        }
    )
    if args.threads > 0:
        os.environ["ONRAMP_DBT_THREADS"] = str(args.threads)
    target = work / "target"
    from onramp.warehouse import dbt_threads, get_engine

    engine = get_engine()
    try:
        ensure_raw_schema(engine)
        # The bench vacuums and analyzes itself. A manual VACUUM or ANALYZE cancels a running
        # autovacuum, and a cancelled BRIN summarization leaves the index matching every range.
        with engine.begin() as conn:
            conn.execute(sa.text("alter table raw.api_events set (autovacuum_enabled = off)"))
        as_of = date.today() - timedelta(days=2)
        _START[0] = as_of - timedelta(days=args.days - 1)
        _START[1] = args.days
        if args.reuse:
            with engine.begin() as conn:
                for schema in ("staging", "intermediate", "marts", "segments", "bench"):
                    conn.execute(sa.text(f"drop schema if exists {schema} cascade"))
                conn.execute(
                    sa.text("delete from raw.api_events where occurred_at >= :d"),
                    {"d": f"{as_of + timedelta(days=1)}T00:00:00+00:00"},
                )
                total = conn.execute(sa.text("select count(*) from raw.api_events")).scalar_one()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("vacuum analyze raw.api_events"))
            # a new Spark warehouse: its raw tables are copied again from these rows, and an
            # earlier run's copy would double them
            shutil.rmtree(work / "spark", ignore_errors=True)
            print(f"reusing {total:,} events in {work}")
        else:
            print(
                f"generating {args.events:,} events, {args.developers:,} developers, "
                f"{args.days} days in {work} ..."
            )
            started = time.monotonic()
            total = generate(engine, args.events, args.developers, args.days, as_of)
            print(f"  {total:,} events in {time.monotonic() - started:.0f} s")

        print(f"  dbt threads: {dbt_threads()} (both builds)")
        if args.spark_only and args.warehouse == "spark":
            add_day(engine, as_of + timedelta(days=1), total, args.days, args.developers)
            s_full, s_full_models, s_incr, s_incr_models = bench_spark(engine, work, as_of)
            ratio = s_incr_models / s_full_models
            print(f"{total:,} events: Spark incremental/full model time {ratio:.3f}")
            return 0
        print(f"  BRIN on occurred_at: {brin_stray_pages(engine):,} heap pages match no day")
        end_at = f"{as_of + timedelta(days=1)}T00:00:00+00:00"
        with engine.begin() as conn:
            conn.execute(sa.text("create schema if not exists bench"))
            conn.execute(sa.text("select count(*) from raw.api_events"))  # warm the cache
        floors = []
        for _ in range(max(1, args.floor_runs)):
            with engine.begin() as conn:
                conn.execute(sa.text("drop table if exists bench.floor_daily_usage"))
                conn.execute(sa.text("set local work_mem = '256MB'"))  # as the models' pre-hook
                t0 = time.monotonic()
                conn.execute(sa.text(FLOOR_SQL), {"end_at": end_at})
                floors.append(time.monotonic() - t0)
        floor = min(floors)

        t0 = time.monotonic()
        full = run_dbt(["build", "--full-refresh"], as_of=as_of)
        full_wall = time.monotonic() - t0
        full_results = run_results(target)
        full_models, n_models = model_seconds(full_results)

        extra = add_day(engine, as_of + timedelta(days=1), total, args.days, args.developers)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("analyze raw.api_events"))
        # The same daily run several times (each rebuilds the same days to the same rows): a
        # 10-second run on a shared machine can catch a burst of other work, so the median counts.
        runs = []
        for _ in range(max(1, args.incremental_runs)):
            t0 = time.monotonic()
            run_dbt(["build"], as_of=as_of + timedelta(days=1))
            wall = time.monotonic() - t0
            results = run_results(target)
            runs.append((model_seconds(results)[0], wall, results))
        incr_models, incr_wall, results = sorted(runs, key=lambda run: run[0])[len(runs) // 2]

        with engine.connect() as conn:
            dev_days = conn.execute(
                sa.text("select count(*) from marts.fct_developer_daily_usage")
            ).scalar_one()
        print(
            f"floor (hand-written developer x day aggregate): {floor:.1f} s (runs: "
            + ", ".join(f"{f:.1f}" for f in floors)
            + ")"
        )
        print(
            f"full dbt build ({n_models} models, {full.tests_passed} tests passed, "
            f"{full.tests_failed} failed): {full_wall:.1f} s wall, "
            f"{full_models:.1f} s model time; {dev_days:,} developer-days"
        )
        print(f"  full build / floor = {full_wall / floor:.2f}  (goal <= 1.5)")
        print(
            f"incremental dbt build after one more day ({extra:,} events), median of "
            f"{len(runs)}: {incr_wall:.1f} s wall, {incr_models:.2f} s model time (runs: "
            + ", ".join(f"{models:.2f}" for models, _, _ in runs)
            + ")"
        )
        print(f"  incremental / full model time = {incr_models / full_models:.3f}  (goal <= 0.10)")
        for label, res in (("full", full_results), ("incremental", results)):
            print(f"  slowest nodes of the {label} build: {slowest(res)}")
        models = sorted(
            (r for r in results if r["unique_id"].startswith("model.")),
            key=lambda r: -r["execution_time"],
        )
        print("  materializations: " + "; ".join(s for s in strategies(target) if "incr" in s))
        print("  model times of the incremental build:")
        for r in models:
            print(f"    {r['unique_id'].split('.')[2]:<45} {r['execution_time']:6.2f} s")
        if args.warehouse == "spark":
            s_full, s_full_models, s_incr, s_incr_models = bench_spark(engine, work, as_of)
            print(
                f"{total:,} events: full build PostgreSQL {full_wall:.1f} s, Spark {s_full:.1f} s "
                f"(wall); incremental/full model time PostgreSQL "
                f"{incr_models / full_models:.3f}, Spark {s_incr_models / s_full_models:.3f}"
            )
        return 0
    finally:
        engine.dispose()
        if not args.keep:
            server.cleanup()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
