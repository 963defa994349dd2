"""
Benchmark: events through the API -> workflow -> tag, with a real `qcluster` worker on PostgreSQL (not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/engine .venv/bin/python benchmarks/bench_events.py \
        [--burst 3000] [--rate 50] [--seconds 20] [--threads 8] [--workers 2]

It creates a throw-away database (test_<name>), an API token, customers, and one active workflow
"event.custom named bench -> add tag Bench", then starts `manage.py qcluster` as a subprocess on that
database (the ORM broker, as in production without Redis).

1. Burst: `--threads` clients POST `--burst` custom events to /api/v1/events/ as fast as they can (Bearer
   token, JSON, through the full DRF stack in process). Prints events/s ingested (accepted by the API),
   then waits until the worker has tagged every customer and prints the effects/s of the drain.
2. Paced: `--rate` events/s for `--seconds` (one new customer each). The event-to-effect latency is the
   time from the client sending the POST to the CustomerTag row's `added_at` (written by the worker).
   Prints p50/p95/p99 and the maximum.
3. Batch: `--batch` events POSTed to /api/v1/batch/events/ in requests of `--batch-size` (the backfill
   endpoint; each item is still its own transaction, outbox row and workflow run). Prints events/s
   ingested and the drain's effects/s.
"""

import argparse
import statistics
import time
from datetime import UTC, datetime

from queue_harness import bench_database, paced_wait, percentile, qcluster, tagging_workflow, threads_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--burst", type=int, default=3000, help="events posted as fast as possible")
    parser.add_argument("--rate", type=float, default=50.0, help="paced events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the paced phase")
    parser.add_argument("--threads", type=int, default=8, help="concurrent API clients")
    parser.add_argument("--workers", type=int, default=2, help="qcluster worker processes")
    parser.add_argument("--batch", type=int, default=2000, help="events posted through the batch endpoint")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch request")
    args = parser.parse_args()

    with bench_database() as database:
        from django.contrib.auth.models import Group
        from django.test import Client

        from apps.customers.models import Customer, DomainEvent
        from apps.platform.services import api_token_create
        from apps.tagging.models import CustomerTag
        from tests.factories import UserFactory

        user = UserFactory(username="bench", is_staff=False, is_superuser=False)
        user.groups.add(Group.objects.get(name="integration"))
        _, raw_token = api_token_create(user=user, name="bench", scopes=["ingest"])
        paced = int(args.rate * args.seconds)
        Customer.objects.bulk_create(
            [Customer(external_id=f"b{i}", email=f"b{i}@example.com") for i in range(args.burst + paced + args.batch)],
            batch_size=5000,
        )
        tagging_workflow(
            name="Bench",
            trigger={"event": "event.custom", "where": {"field": "event.name", "op": "eq", "value": "bench"}},
            tag="Bench",
        )
        ids = dict(Customer.objects.values_list("external_id", "pk"))
        sent_at: dict[str, datetime] = {}
        failures: list[str] = []

        def post_all(jobs: list[tuple[float | None, str]]) -> None:
            client = Client()
            for due, external_id in jobs:
                paced_wait(due)
                sent_at[external_id] = datetime.now(UTC)
                response = client.post(
                    "/api/v1/events/",
                    data={"customer_external_id": external_id, "name": "bench"},
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {raw_token}",
                )
                if response.status_code != 201:
                    failures.append(f"{response.status_code}: {response.content[:200]!r}")

        def run_clients(jobs: list[tuple[float | None, str]]) -> float:
            return threads_run(jobs, threads=args.threads, send=post_all)

        def wait_for_tags(expected: int, timeout: float = 300) -> float:
            started = time.perf_counter()
            while CustomerTag.objects.filter(tag__name="Bench").count() < expected:
                if time.perf_counter() - started > timeout:
                    raise SystemExit(f"timeout: only {CustomerTag.objects.count()} tags of {expected}")
                time.sleep(0.1)
            return time.perf_counter() - started

        with qcluster(database, workers=args.workers):
            # 1. Burst
            burst_ids = [f"b{i}" for i in range(args.burst)]
            elapsed = run_clients([(None, external_id) for external_id in burst_ids])
            drain_started = time.perf_counter() - elapsed
            wait_for_tags(args.burst)
            drained = time.perf_counter() - drain_started
            print(f"burst: {args.burst} events in {elapsed:.2f}s -> {args.burst / elapsed:.0f} events/s ingested")
            print(
                f"burst: all {args.burst} tags {drained:.2f}s after the first POST -> "
                f"{args.burst / drained:.0f} effects/s"
            )

            # 2. Paced
            paced_ids = [f"b{i}" for i in range(args.burst, args.burst + paced)]
            start = time.monotonic() + 0.5
            elapsed = run_clients(
                [(start + index / args.rate, external_id) for index, external_id in enumerate(paced_ids)]
            )
            wait_for_tags(args.burst + paced)
            added = dict(
                CustomerTag.objects.filter(tag__name="Bench", customer_id__in=[ids[e] for e in paced_ids]).values_list(
                    "customer__external_id", "added_at"
                )
            )
            latencies = [(added[e] - sent_at[e]).total_seconds() for e in paced_ids]
            print(f"paced: {paced} events at {args.rate:g}/s ({paced / elapsed:.1f}/s achieved)")
            print(
                "paced: event-to-effect latency "
                f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, "
                f"mean {statistics.mean(latencies) * 1000:.0f} ms"
            )
            # 3. Batch endpoint
            batch_ids = [f"b{i}" for i in range(args.burst + paced, args.burst + paced + args.batch)]
            chunks = [batch_ids[i : i + args.batch_size] for i in range(0, len(batch_ids), args.batch_size)]

            def post_batches(share: list[list[str]]) -> None:
                client = Client()
                for chunk in share:
                    response = client.post(
                        "/api/v1/batch/events/",
                        data={"items": [{"customer_external_id": e, "name": "bench"} for e in chunk]},
                        content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {raw_token}",
                    )
                    if response.status_code != 200:
                        failures.append(f"{response.status_code}: {response.content[:200]!r}")

            if chunks:
                started = time.perf_counter()
                elapsed = threads_run(chunks, threads=args.threads, send=post_batches)
                wait_for_tags(args.burst + paced + args.batch)
                drained = time.perf_counter() - started
                print(
                    f"batch: {args.batch} events in {len(chunks)} requests in {elapsed:.2f}s -> "
                    f"{args.batch / elapsed:.0f} events/s ingested"
                )
                print(
                    f"batch: all {args.batch} tags {drained:.2f}s after the first POST -> "
                    f"{args.batch / drained:.0f} effects/s"
                )

        pending = DomainEvent.objects.filter(status="pending").count()
        print(
            f"check: {len(failures)} failed POSTs, {pending} events still pending, "
            f"{CustomerTag.objects.filter(tag__name='Bench').count()} tags"
        )
        if failures:
            print("first failure:", failures[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
