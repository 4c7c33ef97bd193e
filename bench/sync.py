"""Benchmark of email_sync: `python bench/sync.py` (about a minute; leaves nothing running).

Prints, in one run, against its own embedded PostgreSQL in a temporary directory and the local
SendGrid server (tests/support/sendgrid_server.py) driven by the official client:

1. the diff of a 1,000,000-member segment with 5% churn (goal <= 5 s),
2. 100,000 contacts upserted to a SendGrid list (goal <= 15 s),
3. 10,000 triggered emails through SendGrid mail send (goal <= 15 s),
4. deciding what is due for 1,000,000 members of an 8-step campaign with 30 days of ledger
   history (goal: at most the time of the diff in 1., measured in the same run),

and for each, where the time went: inside SQL statements (PostgreSQL), inside provider HTTP calls
(the SendGrid server, which runs in this process, so its own work counts as waiting on it), and the
rest: onramp's own Python (rendering, batching, JSON). Options: --members N, --contacts N,
--emails N to scale down on a slow machine.

`--spark` measures instead how a segment built on Spark crosses into the state PostgreSQL before a
sync (`email_sync.spark_mirror`, local Spark, needs Java): seconds and rows/s for --members rows,
and the peak memory growth of this process (and of Spark's JVM) while a tenth of them and all of
them cross, measured in the same run: a ratio near 1 is the bounded footprint (the Arrow batches
stream through; nothing holds the segment). For contrast, `DataFrame.toArrow()` of the same rows.
`--driver-memory 512m` runs Spark's JVM with a small heap: the copy still fits, `toArrow()` not.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from email_sync.providers import RetryPolicy  # noqa: E402
from email_sync.providers.sendgrid import SendGridProvider  # noqa: E402
from email_sync.schema import ensure_email_schema  # noqa: E402
from email_sync.specs import spec_from_meta  # noqa: E402
from email_sync.sync import SyncResult, sync_segment  # noqa: E402
from onramp.settings import Settings  # noqa: E402
from onramp.warehouse import sqlalchemy_url  # noqa: E402
from tests.support.sendgrid_server import SendGridServer  # noqa: E402

AS_OF = date(2026, 11, 26)


class SqlTimer:
    """Accumulates wall time spent inside cursor.execute (i.e. waiting on PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seconds = 0.0
        self._start: list[float] = []
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *args: object) -> None:
        self._start.append(time.perf_counter())

    def _after(self, *args: object) -> None:
        self.seconds += time.perf_counter() - self._start.pop()


def create_segment(engine: sa.Engine, name: str, rows: int, start: int = 0) -> None:
    """segments.seg_<name> with the contract's columns, built in SQL (no Python rows)."""
    with engine.begin() as conn:
        conn.execute(sa.text("create schema if not exists segments"))
        conn.execute(sa.text(f"drop table if exists segments.seg_{name}"))
        conn.execute(
            sa.text(
                f"""
                create table segments.seg_{name} as
                select 'dev-' || lpad(g::text, 8, '0') as member_key,
                       'dev-' || lpad(g::text, 8, '0') as developer_id,
                       'dev' || g || '@example.com' as email,
                       'Dev ' || g || ' Person' as name,
                       (array['engineering', 'product', 'sales', 'support'])[1 + g % 4] as role,
                       'Company ' || (g % 997) as company_name,
                       true as marketing_opt_in,
                       (array['not_integrated', 'sandbox', 'production'])[1 + g % 3] as stage,
                       (g % 5000)::bigint as events_7d,
                       (g % 90)::int as events_429
                from generate_series(cast(:start as int), cast(:stop as int)) as g
                """
            ),
            {"start": start, "stop": start + rows - 1},
        )
        conn.execute(sa.text(f"alter table segments.seg_{name} add primary key (member_key)"))
        conn.execute(sa.text(f"analyze segments.seg_{name}"))


def churn(engine: sa.Engine, name: str, rows: int, share: float) -> None:
    """Replace `share` of the members: the first ones leave, as many new ones arrive."""
    n = int(rows * share)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"delete from segments.seg_{name} where member_key in "
                f"(select member_key from segments.seg_{name} order by member_key limit :n)"
            ),
            {"n": n},
        )
        conn.execute(
            sa.text(
                f"""
                insert into segments.seg_{name}
                select 'dev-' || lpad(g::text, 8, '0'), 'dev-' || lpad(g::text, 8, '0'),
                       'dev' || g || '@example.com', 'Dev ' || g, 'engineering', 'Company',
                       true, 'sandbox', 1, 25
                from generate_series(cast(:start as int), cast(:stop as int)) as g
                """
            ),
            {"start": rows + 10_000_000, "stop": rows + 10_000_000 + n - 1},
        )
        conn.execute(sa.text(f"analyze segments.seg_{name}"))


def report(
    label: str, goal_s: float, seconds: float, sql_s: float, provider_s: float, detail: str
) -> None:
    own = max(seconds - sql_s - provider_s, 0.0)
    verdict = "ok" if seconds <= goal_s else "SLOWER THAN GOAL"
    print(f"{label}")
    ratio = seconds / goal_s
    print(f"  {seconds:6.2f} s  (goal {goal_s:g} s, {ratio:.2f}x of goal: {verdict})  {detail}")
    print(
        f"  time: onramp Python {own / seconds:5.1%} | PostgreSQL {sql_s / seconds:5.1%} | "
        f"provider HTTP (SendGrid server) {provider_s / seconds:5.1%}"
    )


def timed_sync(engine, timer, settings, spec, provider=None) -> tuple[SyncResult, float, float]:
    sql_before = timer.seconds
    start = time.perf_counter()
    result = sync_segment(engine, settings, spec, AS_OF, provider=provider)
    return result, time.perf_counter() - start, timer.seconds - sql_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument(
        "--spark", action="store_true", help="Measure the crossing from Spark instead."
    )
    parser.add_argument(
        "--driver-memory",
        default=None,
        help="With --spark: the Spark driver's heap (e.g. 512m), to show the copy fits in it.",
    )
    args = parser.parse_args()
    if args.driver_memory:  # read when the JVM starts, before any session exists
        os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.driver_memory} pyspark-shell"
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="onramp-bench-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri("postgres")
            engine = sa.create_engine(sqlalchemy_url(url))
            with engine.begin() as conn:
                ensure_email_schema(conn)
            timer = SqlTimer(engine)
            settings = dataclasses.replace(
                Settings.from_env(),
                home=Path(tmp) / "home",
                database_url=url,
                email_provider="sendgrid",
                blast_radius_min_members=10**9,
                # marketing mail needs one-click unsubscribe and a postal address
                public_url="https://onramp.example.com",
                unsubscribe_secret="bench-unsubscribe-secret-0123456789",
                postal_address="onramp bench, 1 Example Street, Example City",
            )
            if args.spark:
                print(f"onramp email_sync bench: crossing from Spark (state PostgreSQL in {tmp})\n")
                bench_spark_crossing(engine, settings, args.members)
                return
            print(f"onramp email_sync bench (embedded PostgreSQL in {tmp})\n")

            # 1. diff
            n = args.members
            create_segment(engine, "bench_diff", n)
            diff_spec = spec_from_meta("bench_diff", {})
            start = time.perf_counter()
            sync_segment(engine, settings, diff_spec, AS_OF, provider=_NullProvider())
            setup = time.perf_counter() - start
            churn(engine, "bench_diff", n, 0.05)
            result, seconds, sql_s = timed_sync(engine, timer, settings, diff_spec, _NullProvider())
            report(
                f"1. diff of a {n:,}-member segment with 5% churn",
                5.0,
                seconds,
                sql_s,
                0.0,
                f"entered {result.entered:,}, exited {result.exited:,} "
                f"(first sync of the segment, not timed: {setup:.1f} s)",
            )

            diff_seconds = seconds
            due_seconds, due = bench_due(engine, settings, n)
            report(
                f"\n4. deciding what is due for {n:,} members with 30 days of ledger history",
                diff_seconds,
                due_seconds,
                due_seconds,  # the decision is SQL statements only
                0.0,
                f"{due.sent + due.capped + due.suppressed:,} steps due today "
                f"({due.sent:,} to send, {due.capped:,} deferred by the cap), "
                f"{due.held_out:,} held out; then writing them to the ledger "
                f"{due.record_seconds:.2f} s ({due.record_seconds / diff_seconds:.2f}x the diff) "
                f"and the guardrails on them {due.guardrail_seconds:.2f} s "
                f"(ratio to the diff in 1.: {due_seconds / diff_seconds:.2f}, goal <= 1.0)",
            )

            with SendGridServer(record_bodies=False) as sg:
                provider = SendGridProvider(
                    sg.api_key,
                    settings.email_from,
                    host=sg.url,
                    timeout_s=60,
                    retry=RetryPolicy(),
                )
                # 2. contacts
                create_segment(engine, "bench_list", args.contacts)
                list_spec = spec_from_meta(
                    "bench_list",
                    {"list": "Bench list", "custom_fields": ["stage", "events_7d"]},
                )
                result, seconds, sql_s = timed_sync(engine, timer, settings, list_spec, provider)
                puts = sg.count("PUT", "/v3/marketing/contacts")
                report(
                    f"\n2. {args.contacts:,} contacts upserted to a SendGrid list",
                    15.0,
                    seconds,
                    sql_s,
                    provider.wait_seconds,
                    f"{result.list_added:,} confirmed by import jobs, {puts} upsert request(s), "
                    f"{len(sg.list_members(sg.list_id('Bench list'))):,} on the server's list",
                )

                # 3. triggered emails
                sg.reset()
                provider.wait_seconds = 0.0
                create_segment(engine, "bench_mail", args.emails)
                mail_spec = spec_from_meta(
                    "bench_mail",
                    {
                        "email": {
                            "template": "rate_limited",
                            "kind": "transactional",
                            "bypass_frequency_cap": True,
                        }
                    },
                )
                result, seconds, sql_s = timed_sync(engine, timer, settings, mail_spec, provider)
                report(
                    f"\n3. {args.emails:,} triggered emails through SendGrid mail send",
                    15.0,
                    seconds,
                    sql_s,
                    provider.wait_seconds,
                    f"{result.sent:,} sent in {sg.count('POST', '/v3/mail/send')} request(s), "
                    f"{len(sg.messages):,} recipients recorded by the server",
                )
        finally:
            server.cleanup()


SEQUENCE_STEPS = (0, 3, 6, 9, 13, 17, 21, 26)  # after_days of the bench campaign's 8 steps


def bench_due(engine: sa.Engine, settings: Settings, n: int):
    """A campaign whose n members entered over the last 30 days (entry day = member number mod
    30 days ago), with the ledger holding every step that fell due before today (about 4 rows a
    member, 9% held out). Timed: the decision of one sync (a dry run, so nothing is sent):
    enrolment, goals, re-adoption, the due steps and their guardrails, all in SQL."""

    meta = {
        "sequence": {
            "category": "marketing",
            "holdout_share": 0.09,
            "steps": [
                {"template": "welcome", "after_days": d, "kind": "ask" if i % 4 == 3 else "content"}
                for i, d in enumerate(SEQUENCE_STEPS)
            ],
        }
    }
    spec = spec_from_meta("bench_seq", meta)
    create_segment(engine, "bench_seq", n)
    start = time.perf_counter()
    with engine.begin() as conn:
        # the history is loaded without the ledger's indexes, which are then built in one go
        # (set-up only: the timed sync below maintains them row by row, as production does)
        indexes = conn.execute(
            sa.text(
                "select indexname, indexdef from pg_indexes where schemaname = 'email_sync' "
                "and tablename = 'messages' and indexname not in ('messages_pkey', 'messages_once')"
            )
        ).all()
        for name, _ in indexes:
            conn.execute(sa.text(f"drop index email_sync.{name}"))
        conn.execute(sa.text("alter table email_sync.messages drop constraint messages_once"))
        conn.execute(
            sa.text(
                """
                insert into email_sync.segment_membership (
                    segment, member_key, developer_id, entered_at, entered_as_of, entry_count,
                    sequence_period, sequence_started_as_of, sequence_step
                )
                select 'bench_seq', member_key, developer_id,
                       cast(:as_of as date) - (g % 30), cast(:as_of as date) - (g % 30), 1,
                       'entry-1', cast(:as_of as date) - (g % 30),
                       (select count(*) from unnest(cast(:steps as int[])) as s(d) where d < g % 30)
                from (
                    select member_key, developer_id,
                           cast(substr(member_key, 5) as int) as g
                    from segments.seg_bench_seq
                ) as m
                """
            ),
            {"as_of": AS_OF, "steps": list(SEQUENCE_STEPS)},
        )
        conn.execute(
            sa.text(
                """
                insert into email_sync.messages (
                    message_id, segment, step, member_key, period, developer_id, email, template,
                    kind, priority, status, created_at, sent_at
                )
                select md5(m.member_key || ':' || s.k), 'bench_seq', s.k::text, m.member_key,
                       'entry-1', m.developer_id, 'x@example.com', 'welcome', 'marketing', 50,
                       case when hashtext(m.developer_id) % 11 = 0 then 'held_out' else 'sent' end,
                       m.sequence_started_as_of + s.d, m.sequence_started_as_of + s.d
                from email_sync.segment_membership as m
                join unnest(cast(:steps as int[])) with ordinality as s(d, k)
                  on s.k <= m.sequence_step
                where m.segment = 'bench_seq'
                """
            ),
            {"steps": list(SEQUENCE_STEPS)},
        )
        conn.execute(
            sa.text(
                "alter table email_sync.messages add constraint messages_once "
                "unique (segment, step, member_key, period)"
            )
        )
        for _, definition in indexes:
            conn.execute(sa.text(definition))
        history = conn.execute(
            sa.text("select count(*) from email_sync.messages where segment = 'bench_seq'")
        ).scalar_one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("vacuum analyze email_sync.messages"))
        conn.execute(sa.text("vacuum analyze email_sync.segment_membership"))
    print(f"  (set-up: {history:,} ledger rows of history in {time.perf_counter() - start:.1f} s)")
    # the day after the as-of day, as a daily sync runs: the cap sees the last week's sends
    clock = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    result = sync_segment(engine, settings, spec, AS_OF, dry_run=True, allow_large=True, now=clock)
    return result.due_seconds, result


class PeakMemory:
    """Samples the resident memory of this process and of Spark's JVM (a child process) every
    10 ms on a thread: the peak growth over a baseline, which getrusage cannot reset."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.jvm = [c for c in self.me.children(recursive=True) if "java" in c.name()]
        self.base = self._now()
        self.peak = self.base
        self._stop = False
        self._thread = None

    def _now(self) -> tuple[int, int]:
        return self.me.memory_info().rss, sum(j.memory_info().rss for j in self.jvm)

    def _sample(self) -> None:
        while not self._stop:
            now = self._now()
            self.peak = (max(self.peak[0], now[0]), max(self.peak[1], now[1]))
            time.sleep(0.01)

    def __enter__(self) -> PeakMemory:
        import threading

        self.peak = self._now()
        self._stop = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()

    def growth_mb(self) -> tuple[float, float]:
        """Peak minus the baseline taken when this object was made: (Python, JVM) in MB."""
        return (self.peak[0] - self.base[0]) / 2**20, (self.peak[1] - self.base[1]) / 2**20


def spark_segment(spark, name: str, rows: int) -> None:
    """segments.seg_<name> on Spark, Parquet, with the columns create_segment gives PostgreSQL."""
    spark.sql("create database if not exists segments")
    spark.sql(f"drop table if exists segments.seg_{name}")
    spark.range(rows).selectExpr(
        "concat('dev-', lpad(cast(id as string), 8, '0')) as member_key",
        "concat('dev-', lpad(cast(id as string), 8, '0')) as developer_id",
        "concat('dev', id, '@example.com') as email",
        "concat('Dev ', id, ' Person') as name",
        "element_at(array('engineering', 'product', 'sales', 'support'), "
        "cast(1 + id % 4 as int)) as role",
        "concat('Company ', id % 997) as company_name",
        "true as marketing_opt_in",
        "element_at(array('not_integrated', 'sandbox', 'production'), "
        "cast(1 + id % 3 as int)) as stage",
        "cast(id % 5000 as bigint) as events_7d",
        "cast(id % 90 as int) as events_429",
        "timestamp'2026-11-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id % 86400) "
        "as last_call_at",
    ).write.format("parquet").saveAsTable(f"segments.seg_{name}")


def bench_spark_crossing(engine: sa.Engine, settings: Settings, rows: int) -> None:
    """5. A segment built on Spark crossing into the state PostgreSQL: time and memory bound."""
    import gc

    from email_sync.spark_mirror import Relation, mirror_for_sync, mirror_relation
    from onramp.spark import java_problem, spark_session

    problem = java_problem()
    if problem:
        print(f"skipped: {problem}")
        return
    settings = dataclasses.replace(settings, warehouse="spark")
    start = time.perf_counter()
    spark = spark_session(settings)
    small = max(rows // 10, 1)
    spark_segment(spark, "cross_warmup", 1000)
    spark_segment(spark, "cross_small", small)
    spark_segment(spark, "cross_full", rows)
    print(
        f"  (set-up: Spark session and {rows + small:,} rows on Spark in "
        f"{time.perf_counter() - start:.1f} s)"
    )
    # warm-up: imports, the first job's JVM classes and pools are not the crossing's cost
    mirror_relation(engine, spark, Relation("segments", "seg_cross_warmup"))
    gc.collect()
    memory = PeakMemory()  # the baseline both crossings are measured against
    figures = {}
    for name, n in (("cross_small", small), ("cross_full", rows)):
        spec = spec_from_meta(name, {})
        with memory:
            start = time.perf_counter()
            result = mirror_for_sync(engine, settings, [spec], spark=spark)
            seconds = time.perf_counter() - start
        assert result.rows == n, (result.rows, n)
        figures[n] = (seconds, *memory.growth_mb())
        gc.collect()
    seconds, py_mb, jvm_mb = figures[rows]
    small_s, small_py, small_jvm = figures[small]
    print(f"5. a {rows:,}-member segment built on Spark crossing into the state PostgreSQL")
    print(f"  {seconds:6.2f} s  ({rows / seconds:,.0f} rows/s; {small:,} rows: {small_s:.2f} s)")
    print(
        f"  peak memory growth, this process: {small_py:.1f} MB for {small:,} rows, "
        f"{py_mb:.1f} MB for {rows:,} (ratio {py_mb / max(small_py, 0.1):.2f} for 10x the rows)"
    )
    print(
        f"  peak memory growth, Spark's JVM: {small_jvm:.1f} MB for {small:,} rows, "
        f"{jvm_mb:.1f} MB for {rows:,}"
    )
    with engine.connect() as conn:
        copied = conn.execute(sa.text("select count(*) from segments.seg_cross_full")).scalar_one()
    assert copied == rows
    start = time.perf_counter()
    again = mirror_for_sync(engine, settings, [spec_from_meta("cross_full", {})], spark=spark)
    assert again.unchanged == ["segments.seg_cross_full"], again.describe()
    print(f"  the next sync, no write on Spark since: {time.perf_counter() - start:.2f} s (unread)")
    gc.collect()
    contrast = PeakMemory()
    try:
        with contrast:
            table = spark.table("segments.seg_cross_full").toArrow()
        del table
        outcome = f"+{contrast.growth_mb()[0]:.1f} MB in this process"
    except Exception as exc:  # a small driver heap cannot hold the whole segment
        outcome = f"failed ({str(exc).strip().splitlines()[0][:120]})"
    print(f"  for contrast, DataFrame.toArrow() of the same {rows:,} rows: {outcome}")


class _NullProvider:
    """The diff bench pushes nothing: a provider that must never be called."""

    name = "none"
    batch_size = 1000
    wait_seconds = 0.0
    calls = 0

    def __getattr__(self, name: str):
        raise AssertionError(f"the diff bench must not call the provider ({name})")


if __name__ == "__main__":
    main()
