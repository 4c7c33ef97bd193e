"""Bench: onramp's loader against a plain PostgreSQL COPY of the same rows, in the same run.

    .venv/bin/python bench/load.py [--events 2000000] [--rss-events 500000]
    .venv/bin/python bench/load.py --warehouse spark --events 500000 --repeat 1

Generates N canonical API events itself (deterministic, no dependency on the sample-data
generator) as CSV and JSONL, starts its own embedded PostgreSQL in a temp dir, and prints for each
format events/s and the ratio to `COPY ... FROM STDIN (FORMAT csv)` of the CSV into a plain table
(higher is better; goal >= 0.5). Each load runs in a subprocess that reports its own peak RSS, for
a smaller and the full file, to show that memory stays flat as the file grows. The machine may
be shared, so each format runs three rounds (--repeat) and every round is printed; the table
keeps the best ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HEADER = (
    "event_id,occurred_at,developer_id,company_id,method,path,status_code,latency_ms,"
    "request_bytes,response_bytes,environment,api_key_id,user_agent,ip"
)
ROUTES = (
    "/v1/users/{}",
    "/v1/orders",
    "/v1/payments/{}/refund",
    "/v1/search?q=shoes",
    "/v1/messages/{}",
    "/v1/webhooks",
)
METHODS = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
STATUSES = ("200",) * 14 + ("201", "400", "404", "429", "500")
AGENTS = ("curl/8.4.0", "python-requests/2.32", "okhttp/4.12", "node-fetch/3.3")


def generate(out: Path, events: int) -> tuple[Path, Path]:
    """events.csv and events.jsonl with the same rows; about a second per 100k events."""
    csv_path = out / f"events_{events}.csv"
    jsonl_path = out / f"events_{events}.jsonl"
    hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
    days = [f"2026-{month:02d}-{day:02d}" for month in range(1, 13) for day in range(1, 29)]
    with open(csv_path, "w") as fc, open(jsonl_path, "w") as fj:
        fc.write(HEADER + "\n")
        csv_buf: list[str] = []
        json_buf: list[str] = []
        for i in range(events):
            second = i * 7 // 3
            ts = f"{days[(second // 86400) % len(days)]}T{hms[second % 86400]}.{i % 1000:03d}Z"
            dev = f"dev_{(i * 7919) % 20000:05d}"
            route = ROUTES[i % 6]
            path = route.format(i % 9973) if "{}" in route else route
            status = STATUSES[i % 19]
            latency = f"{(i * 37) % 900 + 3}.{i % 10}"
            env = "production" if i % 3 else "sandbox"
            agent = AGENTS[i % 4]
            ip = f"10.{i % 200}.{(i // 200) % 250}.{i % 251}"
            eid = f"ev_{i:010d}"
            method = METHODS[i % 6]
            req, resp = (i * 13) % 4000, (i * 31) % 20000
            co = f"co_{(i * 7919) % 20000 // 8:05d}"
            key = f"key_{(i * 7919) % 20000:05d}"
            csv_buf.append(
                f"{eid},{ts},{dev},{co},{method},{path},{status},{latency},{req},{resp},"
                f"{env},{key},{agent},{ip}\n"
            )
            json_buf.append(
                f'{{"event_id":"{eid}","occurred_at":"{ts}","developer_id":"{dev}",'
                f'"company_id":"{co}","method":"{method}","path":"{path}","status_code":{status},'
                f'"latency_ms":{latency},"request_bytes":{req},"response_bytes":{resp},'
                f'"environment":"{env}","api_key_id":"{key}","user_agent":"{agent}","ip":"{ip}"}}\n'
            )
            if len(csv_buf) >= 50_000:
                fc.write("".join(csv_buf))
                fj.write("".join(json_buf))
                csv_buf.clear()
                json_buf.clear()
        fc.write("".join(csv_buf))
        fj.write("".join(json_buf))
    return csv_path, jsonl_path


def with_repeats(jsonl_path: Path, share: float) -> Path:
    """A copy of the JSONL file where `share` of the events come again 1,000-20,000 lines later,
    as retried deliveries do (the sample data has about 0.3%). Same distinct rows."""
    out_path = jsonl_path.with_name(jsonl_path.stem + "_repeats.jsonl")
    every = max(1, round(1 / share))
    pending: dict[int, list[str]] = {}
    with open(jsonl_path) as src, open(out_path, "w") as out:
        for i, line in enumerate(src):
            out.write(line)
            if (i * 2654435761) % every == 0:
                pending.setdefault(i + 1000 + (i * 7919) % 19000, []).append(line)
            out.writelines(pending.pop(i, []))
        for lines in pending.values():
            out.writelines(lines)
    return out_path


PLAIN_TABLE = """
drop table if exists bench_plain;
create table bench_plain (
    event_id text, occurred_at timestamptz, developer_id text, company_id text, method text,
    path text, status_code integer, latency_ms double precision, request_bytes bigint,
    response_bytes bigint, environment text, api_key_id text, user_agent text, ip text
);
"""


# The same COPY into a table with raw.api_events' unique index on event_id, which onramp's load
# pays for idempotency: it shows how much of the gap is PostgreSQL's index, not onramp's code.
INDEXED = "create unique index on bench_plain (event_id);"


def plain_copy(url: str, csv_path: Path, indexed: bool = False) -> float:
    """Seconds for a plain `COPY ... FROM STDIN (FORMAT csv)` of the file into a plain table."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PLAIN_TABLE + (INDEXED if indexed else ""))
        conn.execute("checkpoint")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("copy bench_plain from stdin (format csv, header true)") as copy:
                with open(csv_path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)
        seconds = time.perf_counter() - started
        conn.execute("drop table bench_plain")
    return seconds


CHILD = """
import json, resource, sys, time
from onramp.warehouse import DbTimeouts, _engine_for
from ingest.loader import load_paths
engine = _engine_for(sys.argv[1], DbTimeouts.from_env())
started = time.perf_counter()
[result] = load_paths(engine, "api-events", [sys.argv[2]])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rows": result.rows_loaded, "rejects": result.rows_rejected,
                  "duplicates": result.rows_duplicate,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def reset_raw(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate raw.api_events, raw.load_rejects, raw.load_batches")
        conn.execute("vacuum raw.api_events")
        conn.execute("checkpoint")


def onramp_load(url: str, path: Path) -> dict[str, float]:
    reset_raw(url)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


SPARK_CHILD = """
import json, os, resource, sys, time
os.environ["ONRAMP_HOME"] = sys.argv[1]
os.environ["ONRAMP_WAREHOUSE"] = "spark"
from onramp.settings import Settings
from onramp.spark import spark_session
from onramp.raw_schema import ensure_raw_schema_spark
from ingest.spark.load import load_paths_spark
started = time.perf_counter()
spark = spark_session(Settings.from_env())
ensure_raw_schema_spark(spark)
session = time.perf_counter() - started
for table in ("api_events", "load_rejects", "load_batches"):
    spark.sql(f"truncate table raw.{table}")
started = time.perf_counter()
[result] = load_paths_spark(spark, "api-events", [sys.argv[2]])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rows": result.rows_loaded, "rejects": result.rows_rejected,
                  "duplicates": result.rows_duplicate, "session_seconds": session,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def spark_load(home: Path, path: Path) -> dict[str, float]:
    """One load into a local Spark warehouse (its own process; session start timed apart)."""
    out = subprocess.run(
        [sys.executable, "-c", SPARK_CHILD, str(home), str(path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def spark_main(args: argparse.Namespace) -> None:
    """Events/s into Spark (local mode) beside PostgreSQL's, for the same CSV and JSONL files.

    Both loads start from empty raw tables; Spark's session start (seconds, once per process)
    is reported apart and not counted in its load time.
    """
    import pgserver
    import sqlalchemy as sa

    from ingest.schema import ensure_raw_schema

    with tempfile.TemporaryDirectory(prefix="onramp-bench-") as tmp:
        tmp_path = Path(tmp)
        csv_path, jsonl_path = generate(tmp_path, args.events)
        print(f"generated {args.events:,} events", flush=True)
        server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri("postgres")
            engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            ensure_raw_schema(engine)
            engine.dispose()
            rows = []
            for fmt, path in (("csv", csv_path), ("jsonl", jsonl_path)):
                pg = min((onramp_load(url, path) for _ in range(args.repeat)), key=_seconds)
                sp = min(
                    (spark_load(tmp_path / "home", path) for _ in range(args.repeat)),
                    key=_seconds,
                )
                for name, result in (("postgres", pg), ("spark", sp)):
                    if result["rows"] != args.events:
                        raise SystemExit(f"{name} {fmt}: loaded {result['rows']} of {args.events}")
                print(
                    f"{fmt}: postgres {pg['seconds']:.2f}s, spark {sp['seconds']:.2f}s"
                    f" (+{sp['session_seconds']:.1f}s session start)",
                    flush=True,
                )
                rows.append((fmt, pg, sp))
            print()
            print(
                f"{'format':<7} {'events':>10} {'pg s':>7} {'pg ev/s':>9} {'spark s':>8}"
                f" {'spark ev/s':>10} {'spark/pg':>8} {'spark RSS':>10}"
            )
            for fmt, pg, sp in rows:
                print(
                    f"{fmt:<7} {args.events:>10,} {pg['seconds']:>7.2f}"
                    f" {args.events / pg['seconds']:>9,.0f} {sp['seconds']:>8.2f}"
                    f" {args.events / sp['seconds']:>10,.0f} {pg['seconds'] / sp['seconds']:>8.2f}"
                    f" {sp['rss_mb']:>7.0f} MB"
                )
            print(
                "(spark/pg = Spark's events/s over PostgreSQL's for the same file; Spark in local"
                " mode on this machine's cores, session start excluded; RSS is the Python"
                " driver's, the JVM's heap is apart)"
            )
        finally:
            server.cleanup()


def _seconds(result: dict[str, float]) -> float:
    return result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rss-events", type=int, default=500_000, help="the smaller RSS run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds per format; the best ratio is kept"
    )
    parser.add_argument(
        "--repeats",
        type=float,
        default=0.0,
        help="also load a JSONL copy where this share of events comes twice (e.g. 0.003)",
    )
    parser.add_argument(
        "--warehouse",
        choices=("postgres", "spark"),
        default="postgres",
        help="spark: events/s into the Spark warehouse beside PostgreSQL's (try --events 500000)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    warnings.filterwarnings("ignore")
    if args.warehouse == "spark":
        spark_main(args)
        return
    import pgserver
    import sqlalchemy as sa

    from ingest.schema import ensure_raw_schema

    with tempfile.TemporaryDirectory(prefix="onramp-bench-") as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        small = min(args.rss_events, args.events)
        files: dict[int, tuple[Path, ...]] = {args.events: generate(tmp_path, args.events)}
        if args.repeats:
            files[args.events] += (with_repeats(files[args.events][1], args.repeats),)
        if small != args.events:
            files[small] = generate(tmp_path, small)
        print(
            f"generated {args.events:,} events in {time.perf_counter() - started:.1f}s", flush=True
        )
        server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri("postgres")
            engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            ensure_raw_schema(engine)
            engine.dispose()
            csv_path = files[args.events][0]
            rows = []
            # The machine may be shared: each load is compared with a plain COPY measured right
            # before it, and with --repeat the best of the rounds is kept for both.
            formats = [("csv", 0), ("jsonl", 1)] + ([("jsonl+rep", 2)] if args.repeats else [])
            for fmt, index in formats:
                best = None
                for _ in range(args.repeat):
                    plain = plain_copy(url, csv_path)
                    indexed = plain_copy(url, csv_path, indexed=True)
                    big = onramp_load(url, files[args.events][index])
                    if big["rows"] != args.events:
                        raise SystemExit(f"{fmt}: loaded {big['rows']} of {args.events} rows")
                    ratio = plain / big["seconds"]
                    print(
                        f"{fmt}: plain COPY {plain:.2f}s, COPY with event_id index {indexed:.2f}s,"
                        f" onramp load {big['seconds']:.2f}s, ratio {ratio:.2f}"
                        f" (vs indexed COPY {indexed / big['seconds']:.2f})",
                        flush=True,
                    )
                    if best is None or ratio > best[0]:
                        best = (ratio, plain, big, indexed)
                ratio, plain, big, indexed = best
                if small == args.events:
                    rss_small = f"{big['rss_mb']:.0f} MB"
                elif index < len(files[small]):
                    rss_small = f"{onramp_load(url, files[small][index])['rss_mb']:.0f} MB"
                else:
                    rss_small = "-"  # the repeats file exists only at full size
                rate = args.events / big["seconds"]
                rows.append(
                    (
                        fmt,
                        big["seconds"],
                        rate,
                        ratio,
                        plain,
                        indexed / big["seconds"],
                        rss_small,
                        big["rss_mb"],
                    )
                )
            print()
            print(
                f"{'format':<9} {'events':>10} {'seconds':>8} {'events/s':>10} {'COPY s':>7} "
                f"{'ratio':>6} {'vs idx':>6} {'RSS@' + f'{small:,}':>14}"
                f" {'RSS@' + f'{args.events:,}':>14}"
            )
            for fmt, seconds, rate, ratio, plain, vs_idx, rss_small, rss_big in rows:
                print(
                    f"{fmt:<9} {args.events:>10,} {seconds:>8.2f} {rate:>10,.0f} {plain:>7.2f} "
                    f"{ratio:>6.2f} {vs_idx:>6.2f} {rss_small:>14} {rss_big:>11.0f} MB"
                )
            print(
                "(ratio = plain COPY seconds / onramp load seconds for the same rows, plain COPY"
                " measured just before; goal >= 0.5. vs idx = the same against a COPY into a"
                " table with raw.api_events' unique event_id index)"
            )
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
