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
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")

TARGETS = {"drain_tag": 200.0, "drain_order": 100.0, "posts": 150.0, "p95": 1.0, "batch": 1000.0}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    return f"min {min(values):.0f} / median {statistics.median(values):.0f} / max {max(values):.0f}"


def load() -> str:
    return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by process `root` and its live descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


# --- the HTTP client process ---------------------------------------------------------------------------


def client_main(args: argparse.Namespace) -> int:
    """`--client`: POST the jobs of `--jobs` (JSON) to `--url` from `--threads` threads; write sent times."""
    jobs = json.loads(Path(args.jobs).read_text())
    host, port = args.url.split(":")
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    sent: dict[str, float] = {}
    failures: list[str] = []
    start = time.time() + 0.3

    def post_all(share: list[dict]) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for job in share:
            if job.get("due") is not None:
                delay = start + job["due"] - time.time()
                if delay > 0:
                    time.sleep(delay)
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

    shares = [jobs[i :: args.threads] for i in range(args.threads)]
    threads = [threading.Thread(target=post_all, args=(share,)) for share in shares if share]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    Path(args.out).write_text(json.dumps({"sent": sent, "failures": failures, "elapsed": elapsed}))
    return 0


# --- the benchmark -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if args.broker == "redis":
        os.environ["REDIS_URL"] = args.redis_url

    import logging

    import django

    django.setup()
    logging.getLogger("django-q").setLevel(logging.WARNING)
    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL: set DATABASE_URL.", file=sys.stderr)
        return 2

    from django.test.utils import setup_test_environment

    print(f"start: {load()}, broker {args.broker}, {args.workers} workers")
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    database = connection.settings_dict
    processes: list[subprocess.Popen] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench_events_"))
    try:
        from django.contrib.auth.models import Group
        from django_q.brokers import get_broker

        from apps.automations import services
        from apps.automations.models import Workflow, WorkflowRun
        from apps.customers import services as customer_services
        from apps.customers.models import Customer, CustomerEvent, DomainEvent
        from apps.platform.services import api_token_create
        from apps.tagging.models import CustomerTag
        from tests.factories import UserFactory, make_order
        from tests.loyalty.conftest import program_make

        if args.broker == "redis":
            get_broker().purge_queue()
        user = UserFactory(username="bench", is_staff=False, is_superuser=False)
        user.groups.add(Group.objects.get(name="integration"))
        _, raw_token = api_token_create(user=user, name="bench", scopes=["ingest"])
        program_make()
        customers = args.drain * (args.repeats + 1) + args.burst + int(args.rate * args.seconds) + args.batch
        Customer.objects.bulk_create(
            [Customer(external_id=f"b{i}", email=f"b{i}@example.com") for i in range(customers)], batch_size=5000
        )
        for name, definition in (
            (
                "Bench",
                {
                    "schema": 1,
                    "trigger": {
                        "event": "event.custom",
                        "where": {"field": "event.name", "op": "eq", "value": "bench"},
                    },
                    "steps": [{"id": "tag", "action": "customer.add_tags", "params": {"tags": ["Bench"]}}],
                },
            ),
            (
                "Buyer",
                {
                    "schema": 1,
                    "trigger": {"event": "order.created"},
                    "steps": [
                        {"id": "tag", "action": "customer.add_tags", "params": {"tags": ["Buyer"]}},
                        {"id": "points", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Bench"}},
                    ],
                },
            ),
        ):
            services.workflow_activate(workflow=services.workflow_create(name=name, definition=definition))
        buyer = Workflow.objects.get(name="Buyer")
        next_customer = iter(range(customers))

        env = {
            **os.environ,
            "DATABASE_URL": (
                f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
                f"{database['PORT'] or 5432}/{database['NAME']}?conn_max_age=600"
            ),
            "Q_WORKERS": str(args.workers),
            "LOG_LEVEL": "WARNING",
        }
        if args.event_batch is not None:
            env["AUTOMATIONS_EVENT_BATCH"] = str(args.event_batch)
        ingest_only = args.workers == 0  # no qcluster: the HTTP phases measure ingestion alone
        if ingest_only:
            args.skip = [*args.skip, "drain", "orders", "paced"]
        else:
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(ROOT / "manage.py"), "qcluster"],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
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

        # 1. and 2. Drains
        def drain(kind: str) -> float:
            ids = [next(next_customer) for _ in range(args.drain)]
            rows = list(Customer.objects.filter(external_id__in=[f"b{i}" for i in ids]))
            before = tags("Bench") if kind == "tag" else WorkflowRun.objects.filter(workflow=buyer).count()
            with transaction.atomic():  # committed at once: the worker finds them all queued
                for customer in rows:
                    if kind == "tag":
                        customer_services.custom_event_record(customer=customer, name="bench")
                    else:
                        make_order(customer, total="25.00")
            committed = time.perf_counter()
            cpu_before = tree_cpu(processes[0].pid)
            if kind == "tag":
                finished = wait_until(lambda: tags("Bench"), before + len(rows))
            else:
                finished = wait_until(
                    lambda: WorkflowRun.objects.filter(workflow=buyer, status="succeeded").count(), before + len(rows)
                )
            cpu_per_event.append((tree_cpu(processes[0].pid) - cpu_before) / len(rows))
            return len(rows) / (finished - committed)

        cpu_per_event: list[float] = []
        for kind, skip, label, target in (
            ("tag", "drain", "drain custom event → add tag: effects/s", TARGETS["drain_tag"]),
            ("order", "orders", "drain order → tag + points: runs/s (2 effects each)", TARGETS["drain_order"]),
        ):
            if skip in args.skip:
                continue
            cpu_per_event.clear()
            rates = [drain(kind) for _ in range(args.repeats)]
            cpu = statistics.median(cpu_per_event)
            print(
                f"{label} over {args.drain} events x {args.repeats}: {spread(rates)}"
                f" (floor {target:.0f}; median {statistics.median(rates) / target:.2f}x the floor) [{load()}]"
            )
            print(
                f"  worker CPU {cpu * 1000:.1f} ms per event (median) -> {1 / cpu:.0f} per worker CPU-second, "
                "whatever the machine's load (PostgreSQL's own CPU not included)"
            )

        # 3.-5. HTTP through gunicorn, clients in another process
        http_phases = {"posts", "paced", "batch"} - set(args.skip)
        if http_phases:
            port = free_port()
            web_env = {
                **env,
                "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.production",
                "SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
                "FIELD_ENCRYPTION_KEY": "Fh1q0pVbH3X0b1m8cZl9nI8cN0pJv1yQe2m6sTQ3c0k=",
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "false",
                "API_THROTTLE_TOKEN": "1000000/min",
                "API_THROTTLE_IP": "1000000/min",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
                "WEB_THREADS": os.environ.get("WEB_THREADS", "4"),
            }
            if args.auth_cache is not None:
                web_env["API_AUTH_CACHE_SECONDS"] = str(args.auth_cache)
            processes.append(
                subprocess.Popen(
                    [
                        str(ROOT / ".venv/bin/gunicorn"),
                        "-c",
                        "loyalty_site/gunicorn.conf.py",
                        "--access-logfile",
                        "/dev/null",
                        "loyalty_site.wsgi",
                    ],
                    env=web_env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            deadline = time.time() + 120
            while True:
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    probe.request("GET", "/healthz")
                    probe.getresponse().read()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise SystemExit("gunicorn did not start") from None
                    time.sleep(0.5)

            def database_cpu() -> float:
                """CPU seconds used so far by the other sessions on the benchmark database (gunicorn's)."""
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                    return sum(tree_cpu(pid) for (pid,) in cursor.fetchall())

            def run_client(jobs: list[dict], name: str) -> dict:
                jobs_file, out_file = scratch / f"{name}.jobs.json", scratch / f"{name}.out.json"
                jobs_file.write_text(json.dumps(jobs))
                web_before, database_before = tree_cpu(processes[-1].pid), database_cpu()
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                client_before = children.ru_utime + children.ru_stime
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--client",
                        "--url",
                        f"127.0.0.1:{port}",
                        "--token",
                        raw_token,
                        "--jobs",
                        str(jobs_file),
                        "--out",
                        str(out_file),
                        "--threads",
                        str(args.threads),
                    ],
                    check=True,
                    cwd=ROOT,
                )
                result = json.loads(out_file.read_text())
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                result["cpu"] = {
                    "web": tree_cpu(processes[-1].pid) - web_before,
                    "database": database_cpu() - database_before,
                    "client": children.ru_utime + children.ru_stime - client_before,
                }
                if result["failures"]:
                    print(f"{name}: {len(result['failures'])} failed POSTs, first: {result['failures'][0]}")
                return result

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
                    f"POSTs /api/v1/events/ via gunicorn ({web_env['WEB_CONCURRENCY']} x {web_env['WEB_THREADS']}), "
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
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        connections.close_all()
        connection.creation.destroy_test_db(database["NAME"], verbosity=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
