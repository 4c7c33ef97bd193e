"""Benchmark of crm_sync: `python bench/crm.py` (a minute or two; leaves nothing running).

Against its own embedded PostgreSQL in a temporary directory and the local HubSpot server
(tests/support/hubspot_server.py) driven by the official hubspot-api-client:

1. the first push of N developers (default 100,000) and their companies (setup: every record is
   new, properties are created, contacts are associated with their company);
2. the push after 5% of the developers changed (and the companies whose rollup changed with
   them; --allow-large, the guard is not what is measured): the change set computed in SQL and
   pushed. Goal: requests = changed records / 100
   (rounded up, per object) plus the property checks (one GET per object).

For each: requests sent, time, and where the time went: inside SQL statements (PostgreSQL), inside
HubSpot calls split into the local server's own handling (it runs in this process) and the rest of
the call (the hubspot-api-client's models and JSON, sockets), and onramp's own Python (the rest).
Options: --developers N, --companies N, --changed-share S.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.sync import AS_OF, SqlTimer  # noqa: E402 (one timer and day for both benches)
from crm_sync.hubspot import HubSpotClient  # noqa: E402
from crm_sync.push import push_all  # noqa: E402
from crm_sync.result import PushResult  # noqa: E402
from crm_sync.specs import load_pump_specs  # noqa: E402
from onramp.settings import Settings  # noqa: E402
from onramp.warehouse import sqlalchemy_url  # noqa: E402
from tests.support.hubspot_server import HubSpotServer  # noqa: E402

STAGES = "array['not_integrated', 'sandbox', 'production', 'dormant']"
ROLES = "array['engineering', 'product', 'sales', 'support', 'unknown']"


def create_pumps(engine: sa.Engine, developers: int, companies: int) -> None:
    """The two pump tables as dbt would leave them, built in SQL, plus one fresh raw event."""
    with engine.begin() as conn:
        conn.execute(sa.text("create schema if not exists raw"))
        conn.execute(sa.text("create table raw.api_events (occurred_at timestamptz)"))
        conn.execute(
            sa.text("insert into raw.api_events values (:t)"), {"t": f"{AS_OF}T23:00:00+00:00"}
        )
        conn.execute(sa.text("create schema if not exists pumps"))
        conn.execute(
            sa.text(
                f"""
                create table pumps.pump_hubspot_contacts as
                select 'dev' || g || '@example.com' as email,
                       'dev_' || g as developer_id,
                       'cmp_' || (g % :companies) as company_id,
                       (g % 5000)::bigint as onramp_api_events_7d,
                       (g % 20000)::bigint as onramp_api_events_30d,
                       ({STAGES})[1 + g % 4] as onramp_funnel_stage,
                       ({ROLES})[1 + g % 5] as onramp_role,
                       timestamptz '2026-10-01 00:00:00+00' + g * interval '7 seconds'
                           as onramp_first_call_at,
                       timestamptz '2026-11-26 00:00:00+00' + (g % 86400) * interval '1 second'
                           as onramp_last_call_at,
                       '/v1/items/{{id}}' as onramp_top_route,
                       round((g % 1200) / 10.0, 1) as onramp_plan_quota_used_pct,
                       case when g % 3 = 0 then 'stage_sandbox;unused_feature' else '' end
                           as onramp_segments
                from generate_series(1, :n) as g
                """
            ),
            {"n": developers, "companies": companies},
        )
        conn.execute(
            sa.text(
                """
                create table pumps.pump_hubspot_companies as
                select 'cmp_' || g as company_id,
                       'Company ' || g as company_name,
                       50::bigint as onramp_developers,
                       10::bigint as onramp_developers_not_integrated,
                       20::bigint as onramp_developers_sandbox,
                       15::bigint as onramp_developers_production,
                       5::bigint as onramp_developers_dormant,
                       (g * 100)::bigint as onramp_api_events_7d,
                       (g * 400)::bigint as onramp_api_events_30d,
                       'production' as onramp_most_advanced_stage,
                       date '2026-10-15' as onramp_first_production_date
                from generate_series(0, :m - 1) as g
                """
            ),
            {"m": companies},
        )
        conn.execute(sa.text("analyze pumps.pump_hubspot_contacts"))
        conn.execute(sa.text("analyze pumps.pump_hubspot_companies"))


def change(engine: sa.Engine, share: float) -> tuple[int, int]:
    """Change the usage of `share` of the developers, and the rollup of their companies."""
    with engine.begin() as conn:
        contacts = conn.execute(
            sa.text(
                """
                update pumps.pump_hubspot_contacts
                set onramp_api_events_7d = onramp_api_events_7d + 1
                where abs(hashtext(email)) % 10000 < :cut
                """
            ),
            {"cut": int(share * 10_000)},
        ).rowcount
        companies = conn.execute(
            sa.text(
                """
                update pumps.pump_hubspot_companies as c
                set onramp_api_events_7d = onramp_api_events_7d + 1
                where exists (
                    select 1 from pumps.pump_hubspot_contacts as d
                    where d.company_id = c.company_id and abs(hashtext(d.email)) % 10000 < :cut
                )
                """
            ),
            {"cut": int(share * 10_000)},
        ).rowcount
    return contacts, companies


def push(engine, settings, specs, client, timer, allow_large=False):
    sql_before, http_before, req_before = timer.seconds, client.seconds, client.requests
    start = time.perf_counter()
    outcomes = push_all(engine, settings, specs, AS_OF, client=client, allow_large=allow_large)
    seconds = time.perf_counter() - start
    errors = [o for o in outcomes if not isinstance(o, PushResult)]
    if errors:
        raise SystemExit(f"push failed: {errors[0]}")
    return (
        {o.object_type: o for o in outcomes},
        seconds,
        timer.seconds - sql_before,
        client.seconds - http_before,
        client.requests - req_before,
    )


def report(
    label: str, seconds: float, sql_s: float, http_s: float, server_s: float, detail: str
) -> None:
    """http_s: time inside client calls (the hubspot-api-client's models and JSON, the sockets,
    the server); server_s: the local server's own handling of the requests, inside http_s."""
    own = max(seconds - sql_s - http_s, 0.0)
    library = max(http_s - server_s, 0.0)
    print(label)
    print(f"  {seconds:6.2f} s  {detail}")
    print(
        f"  time: onramp Python {own / seconds:5.1%} | PostgreSQL {sql_s / seconds:5.1%} | "
        f"hubspot-api-client + HTTP {library / seconds:5.1%} | "
        f"local HubSpot server {server_s / seconds:5.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--developers", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=20_000)
    parser.add_argument("--changed-share", type=float, default=0.05)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    from onramp.dbt import manifest_path

    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    specs = load_pump_specs(manifest_path())
    with tempfile.TemporaryDirectory(prefix="onramp-bench-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri("postgres")
            engine = sa.create_engine(sqlalchemy_url(url))
            timer = SqlTimer(engine)
            with HubSpotServer() as hs:
                settings = dataclasses.replace(
                    Settings.from_env(),
                    home=Path(tmp) / "home",
                    database_url=url,
                    hubspot_access_token=hs.token,
                    hubspot_api_host=hs.url,
                )
                client = HubSpotClient(hs.token, host=hs.url)
                print(f"onramp crm_sync bench (embedded PostgreSQL in {tmp})\n")
                create_pumps(engine, args.developers, args.companies)

                results, seconds, sql_s, http_s, requests = push(
                    engine, settings, specs, client, timer
                )
                c, k = results["contacts"], results["companies"]
                report(
                    f"1. first push: {c.pushed:,} contacts, {k.pushed:,} companies, "
                    f"{c.associations:,} associations",
                    seconds,
                    sql_s,
                    http_s,
                    hs.server_seconds(),
                    f"{requests:,} requests",
                )

                changed_contacts, changed_companies = change(engine, args.changed_share)
                hs.reset()
                # the rollups of a fifth of the companies change with 5% of the developers: the
                # blast-radius guard is not what is measured here
                results, seconds, sql_s, http_s, requests = push(
                    engine, settings, specs, client, timer, allow_large=True
                )
                c, k = results["contacts"], results["companies"]
                assert c.changed == changed_contacts and k.changed == changed_companies, (
                    c.changed,
                    changed_contacts,
                    k.changed,
                    changed_companies,
                )
                goal = math.ceil(c.changed / 100) + math.ceil(k.changed / 100) + 2
                verdict = "ok" if requests <= goal else "MORE THAN GOAL"
                report(
                    f"2. {args.changed_share:.0%} of {args.developers:,} developers changed: "
                    f"{c.changed:,} contacts + {k.changed:,} companies pushed",
                    seconds,
                    sql_s,
                    http_s,
                    hs.server_seconds(),
                    f"{requests} requests (goal {goal} = ceil({c.changed}/100) + "
                    f"ceil({k.changed}/100) + 2 property checks; {requests / goal:.2f}x: "
                    f"{verdict}); change set in SQL {c.diff_seconds + k.diff_seconds:.2f} s",
                )
                unchanged = time.perf_counter()
                hs.reset()
                results, seconds, sql_s, http_s, requests = push(
                    engine, settings, specs, client, timer
                )
                report(
                    "3. push with nothing changed",
                    seconds,
                    sql_s,
                    http_s,
                    hs.server_seconds(),
                    f"{requests} requests (goal 0); "
                    f"{time.perf_counter() - unchanged:.2f} s end to end",
                )
        finally:
            engine.dispose()
            server.cleanup()


if __name__ == "__main__":
    main()
