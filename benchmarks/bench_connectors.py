"""
Benchmark: real Shopify webhooks per second through gunicorn, end to end into orders and customers (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/connbench .venv/bin/python benchmarks/bench_connectors.py \
        [--burst 1000] [--rate 20] [--seconds 15] [--threads 8] [--workers 2]

It creates a throw-away database (test_<name>), a connected Shopify shop and one active workflow
"order.created -> add tag Shopify buyer", then starts, as `scripts/run production` does, gunicorn (production
settings, `WEB_CONCURRENCY` x `WEB_THREADS`, default 2 x 4) on 127.0.0.1 and `manage.py qcluster` (`--workers`
processes, the ORM broker). The shop is a separate process (this script with `--client`): `--threads` keep-alive
HTTP connections POST signed `orders/create` deliveries (the documented sample, each with its own order id and
customer id, signed with the connection's secret: `X-Shopify-Hmac-Sha256` over the raw body) to
/hooks/shopify/<key>/, and time each answer.

1. Burst: `--burst` deliveries as fast as the clients can → webhooks/s accepted (every answer 200
   `accepted`), answer time p50/p95/p99; then the time until the worker has applied them all (orders, customers
   and the workflow's tag exist) → webhooks/s end to end, receipt → processed p50/p95/max, and receipt → the
   workflow's tag written (the whole path: delivery processed, order.created consumed, the run done).
2. Replays: the same webhook ids again → every answer `duplicate`, nothing more stored; webhooks/s.
3. Paced: `--rate` deliveries/s for `--seconds` → answer time p50/p95/p99, receipt → processed and receipt →
   workflow tag written p50/p95/p99.

Everything shares the machine (client, web, worker, database): it prints the load average beside each figure.
"""

import argparse
import base64
import copy
import hashlib
import hmac
import http.client
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from queue_harness import (
    FIELD_ENCRYPTION_KEY,
    ROOT,
    bench_database,
    client_arguments,
    client_run,
    free_port,
    gunicorn_start,
    load,
    paced_wait,
    percentile,
    processes_running,
    qcluster_start,
    tagging_workflow,
    threads_run,
    web_env,
    web_wait,
    worker_env,
)

SECRET = "shpss_bench_secret"
DOMAIN = "bench.myshopify.com"
SAMPLE = ROOT / "tests" / "connectors" / "fixtures" / "shopify" / "orders__create.json"


def body_for(sample: dict, index: int) -> bytes:
    order = copy.deepcopy(sample)
    order["id"] = 10_000_000 + index
    order["name"] = f"#B{index}"
    order["customer"]["id"] = 20_000_000 + index
    order["customer"]["email"] = f"buyer{index}@example.com"
    return json.dumps(order).encode()


# --- the shop: a separate client process ---------------------------------------------------------------


def client_main(args: argparse.Namespace) -> int:
    """`--client`: POST the deliveries of `--jobs` (JSON: [index, due seconds or null]) to `--url`; write timings."""
    jobs = json.loads(Path(args.jobs).read_text())
    host, port = args.url.split(":")
    sample = json.loads(SAMPLE.read_text())
    sample.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "paid"})
    answers: dict[str, int] = {}
    durations: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.3

    def post_all(share: list[list]) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        for index, due in share:
            body = body_for(sample, index)
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": base64.b64encode(
                    hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
                ).decode(),
                "X-Shopify-Shop-Domain": DOMAIN,
                "X-Shopify-Webhook-Id": f"bench-{index}",
                "X-Shopify-API-Version": "2025-01",
            }
            paced_wait(None if due is None else start + due)
            began = time.perf_counter()
            try:
                try:
                    connection.request("POST", args.path, body=body, headers=headers)
                    response = connection.getresponse()
                except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                    # The server closed the idle keep-alive connection (gunicorn's keepalive is seconds; paced
                    # clients wait longer between deliveries): once more on a new one, as HTTP clients do.
                    connection.close()
                    connection = http.client.HTTPConnection(host, int(port), timeout=120)
                    began = time.perf_counter()
                    connection.request("POST", args.path, body=body, headers=headers)
                    response = connection.getresponse()
                content = response.read()
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    failures.append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=120)
                continue
            took = time.perf_counter() - began
            key = str(response.status)
            if response.status == 200:
                key = json.loads(content).get("status", key)
            else:
                with lock:
                    failures.append(f"{response.status}: {content[:200]!r}")
            with lock:
                answers[key] = answers.get(key, 0) + 1
                durations.append(took)
        connection.close()

    elapsed = threads_run(jobs, threads=args.threads, send=post_all)
    result = {"answers": answers, "durations": durations, "failures": failures, "elapsed": elapsed}
    Path(args.out).write_text(json.dumps(result))
    return 0


# --- the benchmark -------------------------------------------------------------------------------------


def ms(values: list[float], share: float) -> str:
    return f"{percentile(values, share) * 1000:,.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--burst", type=int, default=1000, help="deliveries posted as fast as possible")
    parser.add_argument("--rate", type=float, default=20.0, help="paced deliveries per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of the paced phase")
    parser.add_argument("--threads", type=int, default=8, help="client connections (in the client process)")
    parser.add_argument("--workers", type=int, default=2, help="qcluster worker processes")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the worker per phase")
    client_arguments(parser)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # figures appear as they come
    # A SIGTERM (timeout, a supervisor) still stops gunicorn and the qcluster and drops the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)
    print(f"start: {load()}")

    scratch = Path(tempfile.mkdtemp(prefix="bench_connectors_"))
    with bench_database(quiet=("apps.connectors",)) as database, processes_running() as processes:
        from django.db.models import Count

        from apps.connectors.models import WebhookDelivery
        from apps.connectors.services.connections import connection_create
        from apps.customers.models import Customer, Order
        from apps.tagging.models import CustomerTag

        shop = connection_create(
            name="Bench shop", platform="shopify", shop_domain=DOMAIN, signing_secret=SECRET, shop_currency="USD"
        )
        tagging_workflow(name="Bench", trigger={"event": "order.created"}, tag="Shopify buyer")
        port = free_port()
        # The qcluster runs with the web's settings (as `scripts/run production`): django-q2 signs each task with
        # SECRET_KEY, so a worker with another key drops every task gunicorn queued.
        web = web_env(worker_env(database, workers=args.workers), port=port)
        processes.append(qcluster_start(web))
        processes.append(gunicorn_start(web))
        web_wait(port, timeout=180)

        def run_client(jobs: list[list], name: str) -> dict:
            return client_run(
                __file__,
                jobs,
                name=name,
                scratch=scratch,
                port=port,
                threads=args.threads,
                options=["--path", f"/hooks/shopify/{shop.hook_key}/"],
            )

        def wait_processed(ids: list[str]) -> float:
            started = reported = time.perf_counter()
            pending = WebhookDelivery.objects.filter(webhook_id__in=ids).exclude(status="received")
            while (done := pending.count()) < len(ids):
                now = time.perf_counter()
                if now - started > args.timeout:
                    raise SystemExit(f"timeout waiting for the worker: {done} of {len(ids)} processed")
                if now - reported > 30:
                    print(f"  ... {done} of {len(ids)} processed after {now - started:.0f}s [{load()}]")
                    reported = now
                time.sleep(0.2)
            return time.perf_counter()

        def receipt_to_processed(ids: list[str]) -> list[float]:
            rows = WebhookDelivery.objects.filter(webhook_id__in=ids).values_list("received_at", "processed_at")
            return [(processed - received).total_seconds() for received, processed in rows if processed]

        def receipt_to_tagged(indexes: list[int]) -> list[float]:
            """
            Receipt -> the workflow's tag on the order's customer: the whole path (delivery stored, processed into
            the customer and order, the order.created event consumed by the engine, the run's add-tag written).
            Waits until every customer has it.
            """
            external = {f"shopify:{DOMAIN}:{20_000_000 + index}": f"bench-{index}" for index in indexes}
            tags = CustomerTag.objects.filter(tag__name="Shopify buyer", customer__external_id__in=list(external))
            started = reported = time.perf_counter()
            while (done := tags.count()) < len(indexes):
                now = time.perf_counter()
                if now - started > args.timeout:
                    raise SystemExit(f"timeout waiting for the workflow: {done} of {len(indexes)} tagged")
                if now - reported > 30:
                    print(f"  ... {done} of {len(indexes)} tagged by the workflow [{load()}]")
                    reported = now
                time.sleep(0.2)
            received = dict(
                WebhookDelivery.objects.filter(webhook_id__in=list(external.values())).values_list(
                    "webhook_id", "received_at"
                )
            )
            return [
                (added - received[external[customer]]).total_seconds()
                for customer, added in tags.values_list("customer__external_id", "added_at")
            ]

        # 1. Burst
        burst_ids = [f"bench-{index}" for index in range(args.burst)]
        started = time.perf_counter()
        result = run_client([[index, None] for index in range(args.burst)], "burst")
        durations = result["durations"]
        print(
            f"burst: {args.burst} signed orders/create POSTs from {args.threads} connections in another process: "
            f"{args.burst / result['elapsed']:.1f} webhooks/s accepted; answer p50 {ms(durations, 0.5)}, "
            f"p95 {ms(durations, 0.95)}, p99 {ms(durations, 0.99)}; answers {result['answers']} [{load()}]"
        )
        finished = wait_processed(burst_ids)
        applied = receipt_to_processed(burst_ids)
        tagged_after = receipt_to_tagged(list(range(args.burst)))
        all_tagged = time.perf_counter()
        statuses = dict(
            WebhookDelivery.objects.filter(webhook_id__in=burst_ids).values_list("status").annotate(n=Count("pk"))
        )
        tagged = CustomerTag.objects.filter(tag__name="Shopify buyer").count()
        print(
            f"burst end to end: all {args.burst} applied {finished - started:.1f}s after the first POST -> "
            f"{args.burst / (finished - started):.1f} webhooks/s into orders and customers; receipt -> processed "
            f"p50 {ms(applied, 0.5)}, p95 {ms(applied, 0.95)}, max {max(applied) * 1000:,.0f} ms "
            f"(queueing behind the burst); {statuses}; {Order.objects.count()} orders, "
            f"{Customer.objects.count()} customers, {tagged} tagged by the workflow [{load()}]"
        )
        print(
            f"burst with workflows: all {args.burst} tagged by the workflow {all_tagged - started:.1f}s after the "
            f"first POST -> {args.burst / (all_tagged - started):.1f} webhooks/s end to end; receipt -> workflow "
            f"tag written p50 {ms(tagged_after, 0.5)}, p95 {ms(tagged_after, 0.95)}, "
            f"max {max(tagged_after) * 1000:,.0f} ms [{load()}]"
        )

        # 2. Replays
        stored = WebhookDelivery.objects.count()
        result = run_client([[index, None] for index in range(args.burst)], "replays")
        print(
            f"replays: the same {args.burst} webhook ids again: {args.burst / result['elapsed']:.1f} webhooks/s, "
            f"answers {result['answers']}, {WebhookDelivery.objects.count() - stored} more stored; answer "
            f"p95 {ms(result['durations'], 0.95)} [{load()}]"
        )

        # 3. Paced
        count = int(args.rate * args.seconds)
        first = args.burst
        paced_ids = [f"bench-{first + n}" for n in range(count)]
        result = run_client([[first + n, n / args.rate] for n in range(count)], "paced")
        wait_processed(paced_ids)
        applied = receipt_to_processed(paced_ids)
        tagged_after = receipt_to_tagged([first + n for n in range(count)])
        durations = result["durations"]
        print(
            f"paced: {count} webhooks at {args.rate:g}/s ({count / result['elapsed']:.1f}/s achieved): answer "
            f"p50 {ms(durations, 0.5)}, p95 {ms(durations, 0.95)}, p99 {ms(durations, 0.99)}; receipt -> "
            f"processed p50 {ms(applied, 0.5)}, p95 {ms(applied, 0.95)}, p99 {ms(applied, 0.99)}, "
            f"max {max(applied) * 1000:,.0f} ms; receipt -> workflow tag written p50 {ms(tagged_after, 0.5)}, "
            f"p95 {ms(tagged_after, 0.95)}, p99 {ms(tagged_after, 0.99)}; answers {result['answers']} [{load()}]"
        )
    print(f"end: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
