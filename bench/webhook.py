"""Benchmark of the Event Webhook receiver: `python bench/webhook.py` (under a minute; leaves
nothing running).

Against its own embedded PostgreSQL in a temporary directory and the real receiver (Starlette on
uvicorn, on a local port): 4 concurrent clients POST batches of 500 events, each signed the way
SendGrid signs (ECDSA P-256 over timestamp + raw body, key generated here). The same events are
first inserted straight into raw.email_events (the receiver's own storage function from as many
threads as clients, no HTTP, no signature), then the table is emptied and the events go through
the receiver. Prints events/s of both, their ratio (goal >= 0.5), the p99 request latency and how
many events were lost (goal 0). Options: --batches N (per client), --batch-size N, --clients N.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import logging
import secrets
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from email_sync.feedback.events import store_batch  # noqa: E402
from email_sync.feedback.schema import ensure_feedback_schema  # noqa: E402
from email_sync.feedback.serve import ReceiverThread  # noqa: E402
from email_sync.schema import ensure_email_schema  # noqa: E402
from onramp.settings import Settings  # noqa: E402
from onramp.warehouse import sqlalchemy_url  # noqa: E402

EVENT_MIX = ("processed", "delivered", "open", "click", "delivered")


def make_batches(n_batches: int, size: int) -> list[bytes]:
    """Batches shaped like SendGrid's: custom_args as top-level keys, unique sg_event_id."""
    now = int(time.time())
    batches = []
    for b in range(n_batches):
        events = []
        for i in range(size):
            n = b * size + i
            event = EVENT_MIX[n % len(EVENT_MIX)]
            ev = {
                "email": f"dev{n % 50_000}@example.com",
                "timestamp": now,
                "event": event,
                "smtp-id": f"<{n}@bench.local>",
                "sg_event_id": secrets.token_urlsafe(16),
                "sg_message_id": f"bench{n // 5}.filter0001.0",
                "category": ["onramp", "new_signups", "welcome"],
                "onramp_message_id": f"bench-{n // 5}",
                "onramp_segment": "new_signups",
            }
            if event == "click":
                ev["url"] = "https://example.com/docs/quickstart"
            if event in ("open", "click"):
                ev["useragent"] = "Mozilla/5.0"
                ev["ip"] = "203.0.113.7"
            events.append(ev)
        batches.append(orjson.dumps(events))
    return batches


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("select count(*) from raw.email_events")).scalar_one()


def truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("truncate raw.email_events, raw.email_event_rejects"))


def direct(engine: sa.Engine, batches: list[bytes], writers: int = 1) -> float:
    """The same batches through the receiver's storage function, no HTTP and no signature,
    from `writers` threads with a connection each (the receiver's concurrency)."""

    def write(mine: list[bytes]) -> None:
        for body in mine:
            with engine.begin() as conn:
                store_batch(conn, body)

    threads = [threading.Thread(target=write, args=(batches[i::writers],)) for i in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def through_receiver(
    port: int, key: ec.EllipticCurvePrivateKey, batches: list[bytes], clients: int
) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def client(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in mine:
            ts = str(int(time.time()))
            signature = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256())))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "SendGrid Event API",
                "X-Twilio-Email-Event-Webhook-Signature": signature.decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": ts,
            }
            t0 = time.perf_counter()
            conn.request("POST", "/sendgrid/events", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                statuses.append(response.status)
        conn.close()

    threads = [threading.Thread(target=client, args=(batches[i::clients],)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, statuses


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batches", type=int, default=20, help="batches per client")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    batches = make_batches(args.clients * args.batches, args.batch_size)
    total = len(batches) * args.batch_size
    with tempfile.TemporaryDirectory(prefix="onramp-bench-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            url = server.get_uri("postgres")
            engine = sa.create_engine(sqlalchemy_url(url), pool_size=8)
            with engine.begin() as conn:
                ensure_email_schema(conn)
                ensure_feedback_schema(conn)
            settings = dataclasses.replace(
                Settings.from_env(),
                home=Path(tmp) / "home",
                database_url=url,
                webhook_public_key=public,
            )
            print(
                f"onramp webhook bench: {args.clients} clients x {args.batches} batches x "
                f"{args.batch_size} signed events = {total:,} events (embedded PostgreSQL)\n"
            )
            direct(engine, batches[:2])  # warm-up: plans, pool
            truncate(engine)
            direct_s = direct(engine, batches, args.clients)
            assert count(engine) == total
            truncate(engine)
            with ReceiverThread(settings, engine) as receiver:
                through_receiver(receiver.port, key, batches[:2], 1)  # warm-up
                truncate(engine)
                wall, latencies, statuses = through_receiver(
                    receiver.port, key, batches, args.clients
                )
            stored = count(engine)
        finally:
            server.cleanup()
    direct_eps = total / direct_s
    receiver_eps = total / wall
    ratio = receiver_eps / direct_eps
    lost = total - stored
    bad = sum(1 for s in statuses if s != 200)
    label = f"direct insert ({args.clients} writers):"
    print(f"{label:<38}{direct_eps:10,.0f} events/s  ({direct_s:.2f} s)")
    label = f"through the receiver ({args.clients} clients):"
    print(f"{label:<38}{receiver_eps:10,.0f} events/s  ({wall:.2f} s)")
    print(f"ratio receiver / direct:              {ratio:10.2f}   (goal >= 0.5)")
    print(f"p99 request latency:                  {p99(latencies) * 1000:10.1f} ms per batch")
    print(f"events lost:                          {lost:10d}   (goal 0; non-200 answers: {bad})")
    if ratio < 0.5 or lost or bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
