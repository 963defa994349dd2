"""
Benchmark: the event path on PostgreSQL — workers draining workflows, single-event POSTs through gunicorn,
event-to-effect latency at a paced rate, the batch endpoint (not a test; issue 12's targets).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/engine .venv/bin/python benchmarks/bench_events.py \
        [--broker orm|redis] [--workers 2] [--drain 2000] [--repeats 3] [--burst 3000] [--rate 100] \
        [--seconds 60] [--batch 5000] [--threads 8] [--skip ...]

It creates a throw-away database (test_<name>), an API token, customers, an active loyalty program and two
active workflows — "event.custom named bench → add tag Bench" and "order.created → add tag Buyer + award 10
points" — and starts `manage.py qcluster` (`--workers` worker processes, the ORM broker or Redis) and, for
the HTTP phases, gunicorn as `scripts/run production` does (production settings, 2 processes x 4 threads)
on 127.0.0.1. HTTP clients run in a separate process (this script with `--client`), never in process.

1. drain (custom event → add tag): `--drain` custom events committed at once while the worker idles; the
   time until every tag exists → effects/s. Repeated `--repeats` times: min / median / max, target ≥ 200.
2. drain (order → tag + points): `--drain` orders committed at once → runs/s (each run adds a tag and
   awards points: two effects), target ≥ 100 runs/s.
3. POSTs: `--burst` single-event POSTs to /api/v1/events/ by `--threads` client threads → POST/s served,
   target ≥ 150; then the drain of those.
4. paced: `--rate` events/s for `--seconds` through gunicorn; latency = client send → the tag's `added_at`:
   p50 / p95 / p99 / max, target p95 ≤ 1 s at 100/s for 60 s.
5. batch: `--batch` events to /api/v1/batch/events/ in requests of `--batch-size` → events/s, target ≥ 1,000.

Client, web, worker and database share the machine: run it `nice` and say under which load (it prints
`uptime` before and after).
"""

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from queue_harness import (
    bench_database,
    bench_workflows,
    client_arguments,
    client_run_measured,
    events_commit,
    free_port,
    gunicorn_start,
    load,
    paced_wait,
    percentile,
    processes_running,
    qcluster_start,
    threads_run,
    tree_cpu,
    web_env,
    web_wait,
    worker_env,
)

TARGETS = {"drain_tag": 200.0, "drain_order": 100.0, "posts": 150.0, "p95": 1.0, "batch": 1000.0}


def spread(values: list[float]) -> str:
    return f"min {min(values):.0f} / median {statistics.median(values):.0f} / max {max(values):.0f}"


# --- the HTTP client process ---------------------------------------------------------------------------


def client_main(args: argparse.Namespace) -> int:
    """`--client`: POST the jobs of `--jobs` (JSON) to `--url` from `--threads` threads; write sent times."""
    jobs = json.loads(Path(args.jobs).read_text())
    host, port = args.url.split(":")
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    sent: dict[str, float] = {}
    failures: list[str] = []
    start = time.monotonic() + 0.3

    def post_all(share: list[dict]) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for job in share:
            paced_wait(None if job.get("due") is None else start + job["due"])
            sent_at = time.time()
            try:
                connection.request("POST", job["path"], body=json.dumps(job["body"]), headers=headers)
                response = connection.getresponse()
                content = response.read()
                if response.status not in (200, 201):
                    failures.append(f"{response.status}: {content[:200]!r}")
            except (OSError, http.client.HTTPException) as error:
                failures.append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                continue
            for key in job["keys"]:
                sent[key] = sent_at
        connection.close()

    elapsed = threads_run(jobs, threads=args.threads, send=post_all)
    Path(args.out).write_text(json.dumps({"sent": sent, "failures": failures, "elapsed": elapsed}))
    return 0


# --- the benchmark -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--broker", choices=["orm", "redis"], default="orm")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--workers", type=int, default=2, help="qcluster worker processes (0: none; the HTTP phases measure ingestion)"
    )
    parser.add_argument("--drain", type=int, default=2000, help="events committed at once per drain")
    parser.add_argument("--repeats", type=int, default=3, help="drain repetitions (min/median/max)")
    parser.add_argument("--burst", type=int, default=3000, help="single-event POSTs as fast as possible")
    parser.add_argument("--rate", type=float, default=100.0, help="paced events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the paced phase")
    parser.add_argument("--threads", type=int, default=8, help="client threads (in the client process)")
    parser.add_argument("--batch", type=int, default=5000, help="events posted through the batch endpoint")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch request")
    parser.add_argument("--event-batch", type=int, default=None, help="AUTOMATIONS_EVENT_BATCH for the workers")
    parser.add_argument("--skip", nargs="*", default=[], choices=["drain", "orders", "posts", "paced", "batch"])
    parser.add_argument("--auth-cache", type=float, default=None, help="API_AUTH_CACHE_SECONDS for gunicorn")
    client_arguments(parser)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if args.broker == "redis":
        os.environ["REDIS_URL"] = args.redis_url

    print(f"start: {load()}, broker {args.broker}, {args.workers} workers")
    scratch = Path(tempfile.mkdtemp(prefix="bench_events_"))
    with bench_database() as database, processes_running() as processes:
        from django.contrib.auth.models import Group
        from django_q.brokers import get_broker

        from apps.automations.models import WorkflowRun
        from apps.customers.models import Customer, CustomerEvent, DomainEvent
        from apps.platform.services import api_token_create
        from apps.tagging.models import CustomerTag
        from tests.factories import UserFactory
        from tests.loyalty.conftest import program_make

        if args.broker == "redis":
            get_broker().purge_queue()
        user = UserFactory(username="bench", is_staff=False, is_superuser=False)
        user.groups.add(Group.objects.get(name="integration"))
        _, raw_token = api_token_create(user=user, name="bench", scopes=["ingest"])
        program_make()
        customers = 2 * args.drain * args.repeats + args.burst + int(args.rate * args.seconds) + args.batch
        Customer.objects.bulk_create(
            [Customer(external_id=f"b{i}", email=f"b{i}@example.com") for i in range(customers)], batch_size=5000
        )
        buyer = bench_workflows()
        next_customer = iter(range(customers))

        env = worker_env(database, workers=args.workers)
        if args.event_batch is not None:
            env["AUTOMATIONS_EVENT_BATCH"] = str(args.event_batch)
        ingest_only = args.workers == 0  # no qcluster: the HTTP phases measure ingestion alone
        if ingest_only:
            args.skip = [*args.skip, "drain", "orders", "paced"]
        else:
            processes.append(qcluster_start(env))
            time.sleep(5)  # let the cluster's workers start

        def tags(name: str) -> int:
            return CustomerTag.objects.filter(tag__name=name).count()

        def wait_until(done, expected: int, timeout: float = 600) -> float:
            started = time.perf_counter()
            while (count := done()) < expected:
                if time.perf_counter() - started > timeout:
                    raise SystemExit(f"timeout: {count} of {expected}")
                time.sleep(0.05)
            return time.perf_counter()

        broker = get_broker()

        def queue_idle(timeout: float = 600) -> float:
            """
            Until no event is pending for any consumer and the broker's queue is empty; returns that time.
            Each drain starts from an idle worker: the tasks a drain leaves behind (an event's task whose event
            another task's batch took finds nothing to do; an order's loyalty earning) would otherwise be
            ahead of the next drain's in the queue.
            """
            started = time.perf_counter()
            while (
                DomainEvent.objects.filter(status="pending").exists()
                or broker.queue_size()
                or (args.broker == "orm" and broker.lock_size())
            ):
                if time.perf_counter() - started > timeout:
                    raise SystemExit("timeout waiting for an idle queue")
                time.sleep(0.05)
            return time.perf_counter()

        # 1. and 2. Drains
        def drain(kind: str) -> float:
            queue_idle()
            ids = [next(next_customer) for _ in range(args.drain)]
            rows = list(Customer.objects.filter(external_id__in=[f"b{i}" for i in ids]))
            before = tags("Bench") if kind == "tag" else WorkflowRun.objects.filter(workflow=buyer).count()
            # The workers' CPU is read before the events are written (they idle until the commit): with Redis
            # they work while this process is still sending the tasks that follow the commit.
            cpu_before = tree_cpu(processes[0].pid)
            committed = events_commit(rows, kind=kind)
            if kind == "tag":
                finished = wait_until(lambda: tags("Bench"), before + len(rows))
            else:
                finished = wait_until(
                    lambda: WorkflowRun.objects.filter(workflow=buyer, status="succeeded").count(), before + len(rows)
                )
            idle = queue_idle()
            cpu_per_event.append((tree_cpu(processes[0].pid) - cpu_before) / len(rows))
            idle_rates.append(len(rows) / (idle - committed))
            return len(rows) / (finished - committed)

        cpu_per_event: list[float] = []
        idle_rates: list[float] = []
        for kind, skip, label, target in (
            ("tag", "drain", "drain custom event → add tag: effects/s", TARGETS["drain_tag"]),
            ("order", "orders", "drain order → tag + points: runs/s (2 effects each)", TARGETS["drain_order"]),
        ):
            if skip in args.skip:
                continue
            cpu_per_event.clear()
            idle_rates.clear()
            rates = [drain(kind) for _ in range(args.repeats)]
            cpu = statistics.median(cpu_per_event)
            print(
                f"{label} over {args.drain} events x {args.repeats}: {spread(rates)}"
                f" (floor {target:.0f}; median {statistics.median(rates) / target:.2f}x the floor) [{load()}]"
            )
            print(
                f"  until the queue is idle too (every task of every consumer done): {spread(idle_rates)} events/s; "
                f"worker CPU {cpu * 1000:.1f} ms per event (median, commit to idle) -> {1 / cpu:.0f} per worker "
                "CPU-second, whatever the machine's load (PostgreSQL's own CPU not included)"
            )

        # 3.-5. HTTP through gunicorn, clients in another process
        http_phases = {"posts", "paced", "batch"} - set(args.skip)
        if http_phases:
            port = free_port()
            web = {**web_env(env, port=port), "API_THROTTLE_TOKEN": "1000000/min", "API_THROTTLE_IP": "1000000/min"}
            if args.auth_cache is not None:
                web["API_AUTH_CACHE_SECONDS"] = str(args.auth_cache)
            processes.append(gunicorn_start(web))
            web_wait(port, timeout=120)

            def run_client(jobs: list[dict], name: str) -> dict:
                return client_run_measured(
                    __file__,
                    jobs,
                    name=name,
                    scratch=scratch,
                    port=port,
                    threads=args.threads,
                    token=raw_token,
                    web_pid=processes[-1].pid,
                )

            def cpu_line(result: dict, units: int, unit: str) -> str:
                """CPU per unit (load-independent) and the rate two idle cores would allow at that cost."""
                web, database, client = (result["cpu"][key] * 1000 / units for key in ("web", "database", "client"))
                return (
                    f"  CPU per {unit}: web {web:.2f} ms, database {database:.2f} ms, client {client:.2f} ms -> "
                    f"two idle cores: {2000 / (web + database):.0f} {unit}s/s for web + database, "
                    f"{2000 / (web + database + client):.0f}/s with the client on the same cores"
                )

            def single(index: int, due: float | None = None) -> dict:
                key = f"b{index}"
                body = {"customer_external_id": key, "name": "bench"}
                return {"path": "/api/v1/events/", "body": body, "keys": [key], "due": due}

            if "posts" in http_phases:
                ids = [next(next_customer) for _ in range(args.burst)]
                before = tags("Bench")
                started = time.perf_counter()
                result = run_client([single(i) for i in ids], "posts")
                effects = "no worker running (--workers 0): ingestion alone"
                if not ingest_only:
                    finished = wait_until(lambda: tags("Bench"), before + len(ids) - len(result["failures"]))
                    effects = (
                        f"all effects {finished - started:.1f}s after the first POST "
                        f"({len(ids) / (finished - started):.0f} effects/s)"
                    )
                print(
                    f"POSTs /api/v1/events/ via gunicorn ({web['WEB_CONCURRENCY']} x {web['WEB_THREADS']}), "
                    f"{args.threads} client threads in another process: {len(ids) / result['elapsed']:.0f} POST/s "
                    f"(floor {TARGETS['posts']:.0f}; {len(ids) / result['elapsed'] / TARGETS['posts']:.2f}x); "
                    f"{effects} [{load()}]"
                )
                print(cpu_line(result, len(ids), "POST"))
            if "paced" in http_phases:
                count = int(args.rate * args.seconds)
                ids = [next(next_customer) for _ in range(count)]
                before = tags("Bench")
                result = run_client([single(i, due=n / args.rate) for n, i in enumerate(ids)], "paced")
                wait_until(lambda: tags("Bench"), before + count - len(result["failures"]))
                added = dict(
                    CustomerTag.objects.filter(
                        tag__name="Bench", customer__external_id__in=[f"b{i}" for i in ids]
                    ).values_list("customer__external_id", "added_at")
                )
                latencies = [added[key].timestamp() - sent for key, sent in result["sent"].items() if key in added]
                p95 = percentile(latencies, 0.95)
                print(
                    f"paced {args.rate:g} events/s for {args.seconds:g}s via gunicorn "
                    f"({count / result['elapsed']:.1f}/s achieved): event-to-effect "
                    f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                    f"p95 {p95 * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
                    f"max {max(latencies) * 1000:.0f} ms (p95 floor {TARGETS['p95']:.1f} s; "
                    f"{p95 / TARGETS['p95']:.2f}x) [{load()}]"
                )
            if "batch" in http_phases:
                ids = [next(next_customer) for _ in range(args.batch)]
                chunks = [ids[i : i + args.batch_size] for i in range(0, len(ids), args.batch_size)]
                jobs = [
                    {
                        "path": "/api/v1/batch/events/",
                        "body": {"items": [{"customer_external_id": f"b{i}", "name": "bench"} for i in chunk]},
                        "keys": [f"b{i}" for i in chunk],
                        "due": None,
                    }
                    for chunk in chunks
                ]
                before = tags("Bench")
                started = time.perf_counter()
                result = run_client(jobs, "batch")
                rate = len(ids) / result["elapsed"]
                effects = "no worker running (--workers 0): ingestion alone"
                if not ingest_only:
                    finished = wait_until(lambda: tags("Bench"), before + len(result["sent"]))
                    effects = (
                        f"all effects {finished - started:.1f}s after the first POST "
                        f"({len(ids) / (finished - started):.0f} effects/s)"
                    )
                stored = CustomerEvent.objects.filter(name="bench", customer__external_id__in=[f"b{i}" for i in ids])
                print(
                    f"batch endpoint via gunicorn: {len(ids)} events in {len(chunks)} requests of {args.batch_size}, "
                    f"{args.threads} client threads: {rate:.0f} events/s ingested (floor {TARGETS['batch']:.0f}; "
                    f"{rate / TARGETS['batch']:.2f}x), {stored.count()} stored; {effects} [{load()}]"
                )
                print(cpu_line(result, len(ids), "event"))

        pending = DomainEvent.objects.filter(status="pending").count()
        print(f"check: {pending} events still pending; end: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
