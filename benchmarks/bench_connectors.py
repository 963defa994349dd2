"""
Benchmark: Shopify webhooks accepted per second and time to processed, on PostgreSQL (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/connectors .venv/bin/python benchmarks/bench_connectors.py \
        [--burst 1000] [--rate 20] [--seconds 15] [--threads 8] [--workers 2]

It creates a throw-away database (test_<name>), a connected Shopify shop and one active workflow
"order.created -> add tag Shopify buyer", then starts `manage.py qcluster` as a subprocess on that database
(the ORM broker, as in production without Redis).

1. Burst: `--threads` clients POST `--burst` signed orders/create deliveries (the documented sample, each with its
   own order and customer id) to /hooks/shopify/<key>/ as fast as they can, through the full Django stack in
   process (HMAC check, insert, enqueue). Prints deliveries/s accepted (200), then waits until the worker has
   processed them all and prints processed/s and the time from receipt to processed (p50/p95/max).
2. Replays: the same `--burst` webhook ids again: every answer must be "duplicate" (and nothing more stored).
3. Paced: `--rate` deliveries/s for `--seconds`: time from receipt to processed, p50/p95/p99/max.
"""

import argparse
import copy
import hashlib
import hmac
import json
import statistics
import sys
import threading
import time

from queue_harness import ROOT, bench_database, paced_wait, percentile, qcluster, tagging_workflow, threads_run

SECRET = "shpss_bench_secret"
SAMPLE = ROOT / "tests" / "connectors" / "fixtures" / "shopify" / "orders__create.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--burst", type=int, default=1000, help="deliveries posted as fast as possible")
    parser.add_argument("--rate", type=float, default=20.0, help="paced deliveries per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of the paced phase")
    parser.add_argument("--threads", type=int, default=8, help="concurrent senders")
    parser.add_argument("--workers", type=int, default=2, help="qcluster worker processes")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # figures appear as they come

    with bench_database(quiet=("apps.connectors",)) as database:
        import base64

        from django.db.models import Count
        from django.test import Client

        from apps.connectors.models import WebhookDelivery
        from apps.connectors.services.connections import connection_create

        shop = connection_create(
            name="Bench shop",
            platform="shopify",
            shop_domain="bench.myshopify.com",
            signing_secret=SECRET,
            shop_currency="USD",
        )
        tagging_workflow(name="Bench", trigger={"event": "order.created"}, tag="Shopify buyer")
        sample = json.loads(SAMPLE.read_text())
        sample.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "paid"})
        url = f"/hooks/shopify/{shop.hook_key}/"
        answers: dict[str, int] = {}
        lock = threading.Lock()

        def body_for(index: int) -> bytes:
            order = copy.deepcopy(sample)
            order["id"] = 10_000_000 + index
            order["name"] = f"#B{index}"
            order["customer"]["id"] = 20_000_000 + index
            order["customer"]["email"] = f"buyer{index}@example.com"
            return json.dumps(order).encode()

        def post_all(jobs: list[tuple[float | None, int]]) -> None:
            client = Client()
            for due, index in jobs:
                paced_wait(due)
                body = body_for(index)
                signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
                response = client.post(
                    url,
                    data=body,
                    content_type="application/json",
                    HTTP_X_SHOPIFY_TOPIC="orders/create",
                    HTTP_X_SHOPIFY_HMAC_SHA256=signature,
                    HTTP_X_SHOPIFY_SHOP_DOMAIN="bench.myshopify.com",
                    HTTP_X_SHOPIFY_WEBHOOK_ID=f"bench-{index}",
                )
                key = (
                    response.json().get("status", str(response.status_code))
                    if response.status_code == 200
                    else str(response.status_code)
                )
                with lock:
                    answers[key] = answers.get(key, 0) + 1

        def run_clients(jobs: list[tuple[float | None, int]]) -> float:
            return threads_run(jobs, threads=args.threads, send=post_all)

        def wait_processed(expected: int, timeout: float = 1800) -> None:
            started = time.perf_counter()
            while WebhookDelivery.objects.exclude(status="received").count() < expected:
                if time.perf_counter() - started > timeout:
                    raise SystemExit("timeout waiting for the worker")
                time.sleep(0.2)

        def latencies(indexes: range) -> list[float]:
            rows = WebhookDelivery.objects.filter(webhook_id__in=[f"bench-{i}" for i in indexes]).values_list(
                "received_at", "processed_at"
            )
            return [(processed - received).total_seconds() for received, processed in rows]

        with qcluster(database, workers=args.workers):
            # 1. Burst
            elapsed = run_clients([(None, index) for index in range(args.burst)])
            print(
                f"burst: {args.burst} deliveries in {elapsed:.2f}s -> {args.burst / elapsed:.0f} accepted/s ({answers})"
            )
            started = time.perf_counter() - elapsed
            wait_processed(args.burst)
            drained = time.perf_counter() - started
            burst = latencies(range(args.burst))
            print(
                f"burst: all processed {drained:.1f}s after the first POST -> {args.burst / drained:.1f} processed/s; "
                f"receipt to processed p50 {percentile(burst, 0.5):.1f}s, p95 {percentile(burst, 0.95):.1f}s, "
                f"max {max(burst):.1f}s (queueing behind the burst)"
            )

            # 2. Replays
            answers.clear()
            elapsed = run_clients([(None, index) for index in range(args.burst)])
            print(f"replays: {args.burst} in {elapsed:.2f}s -> {args.burst / elapsed:.0f}/s, answers {answers}")

            # 3. Paced
            answers.clear()
            paced = int(args.rate * args.seconds)
            first = args.burst
            start = time.monotonic() + 0.5
            elapsed = run_clients([(start + n / args.rate, first + n) for n in range(paced)])
            wait_processed(args.burst + paced)
            paced_latencies = latencies(range(first, first + paced))
            print(f"paced: {paced} deliveries at {args.rate:g}/s ({paced / elapsed:.1f}/s achieved, {answers})")
            print(
                "paced: receipt to processed "
                f"p50 {percentile(paced_latencies, 0.5) * 1000:.0f} ms, "
                f"p95 {percentile(paced_latencies, 0.95) * 1000:.0f} ms, "
                f"p99 {percentile(paced_latencies, 0.99) * 1000:.0f} ms, max {max(paced_latencies) * 1000:.0f} ms, "
                f"mean {statistics.mean(paced_latencies) * 1000:.0f} ms"
            )
        statuses = dict(WebhookDelivery.objects.values("status").annotate(n=Count("pk")).values_list("status", "n"))
        print(
            f"check: deliveries by status {statuses}; "
            f"stored {WebhookDelivery.objects.count()} (expected {args.burst + paced})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
