"""
Benchmark: the production set-up on PostgreSQL and Redis — requests/s, latency, errors, database connections
and CPU per request of gunicorn under 16 client connections (not a test; the README's "Production and
scale-out / Measured").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/prodmeasure_bench?conn_max_age=600 \
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python benchmarks/bench_production.py \
        [--customers 100000] [--orders 500000] [--seconds 20] [--connections 16] [--qclusters 2] \
        [--setups persistent pool4 pool2] [--endpoints customers healthz events] [--max-requests N] [--keepdb]

It creates a throw-away database (test_<name>; `--keepdb` keeps and reuses it), fills it with `generate_data`
(`--customers`, `--orders`, seed 1) and `load_demo` (stores, products, demo customers with tags and consents,
the demo workflows, active), applies the schedules (`setup_schedules`) and starts what `scripts/run production`
starts: `--qclusters` `manage.py qcluster` processes (`Q_WORKERS`, default 2) on Redis, and gunicorn
(`loyalty_site/gunicorn.conf.py`, production settings, `WEB_CONCURRENCY` x `WEB_THREADS`, default 2 x 4),
once per set-up:

- `persistent`: persistent connections (`conn_max_age=600`, no pool);
- `pool4`, `pool2`: Django's psycopg pool, `DATABASE_POOL_MAX_SIZE=4` / `=2` per process.

`collectstatic` is not run: no measured endpoint serves a static file. The API throttles are raised out of the
way (a throughput figure, not a throttle figure). Per set-up, after 3 s of warm-up, each endpoint for
`--seconds` from `--connections` keep-alive connections (threads of a separate client process, this script
with `--client`), one endpoint at a time:

- `customers`: GET /api/v1/customers/?page_size=20 with a Bearer token (integration role, scope ingest);
- `healthz`: GET /healthz (database, broker, worker, outbox checks);
- `events`: POST /api/v1/events/ (a custom event "bench" for one of 2,000 generated customers; an active
  workflow "event.custom named bench → add tag Bench" listens, so the qcluster workers run one workflow per
  event while the client goes on; the next phase waits until they have caught up, and says after how long).

Printed per endpoint: requests/s, p50 / p95 / p99 / max latency, errors (an unexpected status or a socket
error), the PostgreSQL connections' peak (pg_stat_activity every 0.2 s, by application_name: web, workers),
CPU per request (the gunicorn tree, every database session, the qcluster trees, the client), and the load
average (1, 5, 15 min) with how much of the cores other work took meanwhile (busy time in /proc/stat not
spent by the web, its database sessions, the workers or the client; and the part of it at nice); how many web
processes gunicorn replaced meanwhile (`WEB_MAX_REQUESTS`, 2000 by default, `--max-requests` to change it: a
replaced process's database sessions end, and their CPU is then not counted); per set-up the connections' peak
over all its phases; at the end a Markdown table.
Once the workers run, one request of each GET in this process: its statements (N+1 shows here).
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from queue_harness import (
    bench_database,
    client_arguments,
    client_run_measured,
    free_port,
    gunicorn_start,
    load,
    percentile,
    processes_running,
    qcluster_start,
    requests_client_main,
    tagging_workflow,
    tree_cpu,
    web_env,
    web_wait,
    worker_env,
)

SETUPS = {"persistent": None, "pool4": 4, "pool2": 2}
WARM_SECONDS = 3.0
SAMPLE_EVERY = 0.2
ENDPOINTS = {
    "customers": {"method": "GET", "path": "/api/v1/customers/?page_size=20", "expect": [200]},
    "healthz": {"method": "GET", "path": "/healthz", "expect": [200]},
    "events": {"method": "POST", "path": "/api/v1/events/", "expect": [201]},
}
EVENT_CUSTOMERS = 2000


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--customers", type=int, default=100_000, help="generated customers (generate_data)")
    parser.add_argument("--orders", type=int, default=500_000, help="generated orders (generate_data)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per endpoint and set-up")
    parser.add_argument("--connections", type=int, default=16, help="client connections (threads)")
    parser.add_argument("--qclusters", type=int, default=2, help="qcluster processes (Q_WORKERS each)")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS), choices=list(ENDPOINTS))
    parser.add_argument(
        "--max-requests", type=int, default=None, help="WEB_MAX_REQUESTS for gunicorn (default: its own, 2000; 0: off)"
    )
    parser.add_argument("--keepdb", action="store_true", help="keep the database (and reuse a kept one)")
    client_arguments(parser)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.customers < EVENT_CUSTOMERS or args.orders < 0 or args.seconds <= 0 or args.connections < 1:
        parser.error(f"--customers must be >= {EVENT_CUSTOMERS}, --orders >= 0, --seconds > 0, --connections >= 1")
    return args


# --- figures -------------------------------------------------------------------------------------------


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Requests/s, latency percentiles and maximum in ms, errors, from a client result."""
    samples = result["samples"]
    if not samples:
        return {"requests": 0, "rate": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "errors": 0}
    return {
        "requests": len(samples),
        "rate": len(samples) / result["elapsed"],
        **{f"p{round(share * 100)}": percentile(samples, share) * 1000 for share in (0.5, 0.95, 0.99)},
        "max": max(samples) * 1000,
        "errors": len(result["failures"]),
    }


@contextmanager
def connections_peak(peaks: dict[str, int]) -> Iterator[dict[str, int]]:
    """
    While inside: every `SAMPLE_EVERY` s, the sessions on this database by application_name (`web`, `worker`,
    anything else under its own name, this process's sessions left out); the highest count of each, and of
    their sum (`total`), is kept in `peaks` (shared by nested uses: a set-up's peak over its phases) and in the
    dict yielded.
    """
    from django.db import connection

    own: dict[str, int] = {}
    stop = threading.Event()
    name = connection.settings_dict["NAME"]

    def sample() -> None:
        from django.db import connections

        try:
            with connections["default"].cursor() as cursor:
                while not stop.is_set():
                    cursor.execute(
                        "SELECT application_name, COUNT(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND application_name IN ('web', 'worker') GROUP BY 1",
                        [name],
                    )
                    counts = dict(cursor.fetchall())
                    counts["total"] = sum(counts.values())
                    for key, count in counts.items():
                        for target in (own, peaks):
                            target[key] = max(target.get(key, 0), count)
                    stop.wait(SAMPLE_EVERY)
        finally:
            connections.close_all()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield own
    finally:
        stop.set()
        sampler.join()


def children(pid: int) -> set[int]:
    """The child processes of `pid` (Linux /proc): gunicorn's workers."""
    try:
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def machine_cpu() -> tuple[float, float]:
    """
    CPU seconds the machine has been busy so far (all cores, /proc/stat) and the part of them spent in niced
    processes: what other work at nice 19 (test suites, reniced database sessions) took beside the benchmark.
    """
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, nice / tick


def peak_text(peaks: dict[str, int]) -> str:
    return f"web {peaks.get('web', 0)}, workers {peaks.get('worker', 0)}"


def database_url(database: dict[str, Any], *, application: str) -> str:
    """The benchmark database's URL with persistent connections, its sessions named `application`."""
    return (
        f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}?conn_max_age=600&application_name={application}"
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| set-up | endpoint | requests/s | p50 / p95 / p99 / max ms | errors | PostgreSQL peak (web, workers) "
        "| CPU ms per request (web, database, workers) | cores used by other work |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setup']} | {row['endpoint']} | {row['rate']:.1f} | {row['p50']:.0f} / {row['p95']:.0f} / "
            f"{row['p99']:.0f} / {row['max']:.0f} | {row['errors']} | {row['peak_web']}, {row['peak_worker']} | "
            f"{row['cpu_web']:.1f}, {row['cpu_database']:.1f}, {row['cpu_worker']:.1f} | {row['other']:.2f} |"
        )
    return "\n".join(lines)


# --- the benchmark -------------------------------------------------------------------------------------


def data_make(args: argparse.Namespace) -> None:
    """
    The generated customers and orders (unless a kept database has them), the demo data, the schedules, the
    workflow the events phase triggers.
    """
    from django.core.management import call_command

    from apps.automations.models import Workflow
    from apps.customers.models import Customer

    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        if not Customer.objects.filter(external_id="gen1-c0").exists():
            call_command("generate_data", customers=args.customers, orders=args.orders, seed=1, stdout=quiet)
        call_command("load_demo", no_admin=True, stdout=quiet)
        call_command("setup_schedules", stdout=quiet)
    if not Workflow.objects.filter(name="Bench").exists():
        tagging_workflow(
            name="Bench",
            trigger={"event": "event.custom", "where": {"field": "event.name", "op": "eq", "value": "bench"}},
            tag="Bench",
        )
    print(
        f"data: {Customer.objects.count():,} customers ({args.customers:,} generated with {args.orders:,} orders, "
        f"seed 1, and the demo data) ready in {time.perf_counter() - started:.0f} s [{load()}]",
        flush=True,
    )


def statements_profile(raw_token: str) -> None:
    """One request of each GET endpoint in this process (test settings, warm): statements and their time."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    for name in ("customers", "healthz"):
        path = ENDPOINTS[name]["path"]
        client.get(path)
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
        database = sum(float(query["time"]) for query in queries.captured_queries)
        print(
            f"profile GET {path} (in process, warm): {response.status_code}, "
            f"{len(queries.captured_queries)} statements ({database * 1000:.1f} ms in the database of "
            f"{elapsed * 1000:.1f} ms)"
        )
        for query in queries.captured_queries:
            print(f"  {float(query['time']) * 1000:6.1f} ms  {query['sql'][:110]}")


def workers_caught_up(timeout: float = 300) -> float:
    """Seconds until no trigger event is pending and the broker's queue is empty."""
    from django_q.brokers import get_broker

    from apps.customers.models import DomainEvent

    broker = get_broker()
    started = time.perf_counter()
    while DomainEvent.objects.filter(status="pending").exists() or broker.queue_size():
        if time.perf_counter() - started > timeout:
            raise SystemExit("the workers did not catch up")
        time.sleep(0.1)
    return time.perf_counter() - started


def workers_start(args: argparse.Namespace, env: dict[str, str], processes: list[Any]) -> None:
    """
    `--qclusters` qcluster processes under `env`; returns once each holds a session, no schedule is overdue
    (/healthz's worker check) and their sessions' count has not changed for 6 s. Prints that count.
    """
    from django.utils import timezone

    from loyalty_site.health import worker_check

    for _ in range(args.qclusters):
        processes.append(qcluster_start(env))
    with connections_peak({}) as idle:
        started, counts = time.perf_counter(), [-1]
        while not (
            idle.get("worker", 0) >= args.qclusters
            and worker_check(timezone.now())["status"] == "ok"
            and counts[-3:] == [idle.get("worker", 0)] * 3
        ):
            if time.perf_counter() - started > 180:
                raise SystemExit("the qcluster processes did not start")
            counts.append(idle.get("worker", 0))
            time.sleep(2)
    print(
        f"{args.qclusters} qcluster x {env['Q_WORKERS']} workers on Redis, idle after the schedules ran: "
        f"PostgreSQL connections {peak_text(idle)} [{load()}]",
        flush=True,
    )


def setup_run(
    args: argparse.Namespace,
    setup: str,
    *,
    env: dict[str, str],
    token: str,
    bodies: dict[str, list[Any]],
    worker_pids: list[int],
    scratch: Path,
) -> list[dict[str, Any]]:
    """gunicorn under `env` with the pool of `setup`, 3 s of warm-up, then each endpoint; a row per endpoint."""
    port = free_port()
    web = {**web_env(env, port=port), "API_THROTTLE_TOKEN": "1000000/min", "API_THROTTLE_IP": "1000000/min"}
    web["DATABASE_URL"] = env["DATABASE_URL"].replace("application_name=worker", "application_name=web")
    if SETUPS[setup]:
        web["DATABASE_POOL_MAX_SIZE"] = str(SETUPS[setup])
    if args.max_requests is not None:
        web["WEB_MAX_REQUESTS"] = str(args.max_requests)
    shape = f"gunicorn {web['WEB_CONCURRENCY']} x {web['WEB_THREADS']}"
    rows: list[dict[str, Any]] = []
    setup_peaks: dict[str, int] = {}
    gunicorn = gunicorn_start(web)

    def run(name: str, seconds: float) -> dict[str, Any]:
        jobs = [
            {**ENDPOINTS[name], "bodies": bodies[name], "seconds": seconds, "offset": index * 997}
            for index in range(args.connections)
        ]
        return client_run_measured(
            __file__,
            jobs,
            name=f"{setup}-{name}",
            scratch=scratch,
            port=port,
            threads=args.connections,
            token=token,
            web_pid=gunicorn.pid,
        )

    try:
        with connections_peak(setup_peaks):
            web_wait(port, timeout=120)
            run("customers", WARM_SECONDS)
            for name in args.endpoints:
                workers_before = sum(tree_cpu(pid) for pid in worker_pids)
                web_before, machine_before = children(gunicorn.pid), machine_cpu()
                with connections_peak(setup_peaks) as peaks:
                    result = run(name, args.seconds)
                workers_cpu = sum(tree_cpu(pid) for pid in worker_pids) - workers_before
                replaced = len(web_before - children(gunicorn.pid))
                busy, niced = (after - before for after, before in zip(machine_cpu(), machine_before, strict=True))
                # What the machine did beside the benchmark: busy time not spent by the web, its database sessions,
                # the workers or the client (other sessions' work, at any priority).
                other = max(0.0, busy - sum(result["cpu"].values()) - workers_cpu)
                figures = summary(result)
                per = 1000 / max(1, figures["requests"])
                cpu = {key: value * per for key, value in result["cpu"].items()}
                cpu["worker"] = workers_cpu * per
                endpoint = ENDPOINTS[name]
                print(
                    f"{setup} ({shape}), {endpoint['method']} {endpoint['path']}, {args.connections} connections "
                    f"for {args.seconds:g} s: {figures['requests']} requests = {figures['rate']:.1f}/s; latency "
                    f"p50 {figures['p50']:.1f} / p95 {figures['p95']:.1f} / p99 {figures['p99']:.1f} / "
                    f"max {figures['max']:.1f} ms; errors {figures['errors']} (statuses {result['statuses']}); "
                    f"PostgreSQL peak {peak_text(peaks)}; web processes replaced (max_requests) {replaced} "
                    f"[{load()}]",
                    flush=True,
                )
                print(
                    f"  CPU per request: web {cpu['web']:.2f} ms, database {cpu['database']:.2f} ms (every "
                    f"session), workers {cpu['worker']:.2f} ms (until the client stopped), client "
                    f"{cpu['client']:.2f} ms; the machine: {busy / result['elapsed']:.2f} of {os.cpu_count()} cores "
                    f"busy, {other / result['elapsed']:.2f} of them by other work ({niced / result['elapsed']:.2f} "
                    "in niced processes)",
                    flush=True,
                )
                if result["failures"]:
                    print(f"  first error: {result['failures'][0]}")
                if name == "events":
                    print(f"  the workers caught up {workers_caught_up():.1f} s after the client stopped [{load()}]")
                rows.append(
                    {
                        "setup": setup,
                        "endpoint": name,
                        **figures,
                        "peak_web": peaks.get("web", 0),
                        "peak_worker": peaks.get("worker", 0),
                        "other": other / result["elapsed"],
                        **{f"cpu_{key}": value for key, value in cpu.items()},
                    }
                )
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=60)
    print(f"{setup}: PostgreSQL peak over the set-up (warm-up included) {peak_text(setup_peaks)}", flush=True)
    time.sleep(2)  # the stopped web's sessions end
    return rows


def main() -> int:
    args = parse()
    if args.client:
        return requests_client_main(args)
    if not os.environ.get("REDIS_URL"):
        print("This benchmark runs the workers on Redis: set REDIS_URL.", file=sys.stderr)
        return 2

    print(f"start: {load()}, {os.cpu_count()} CPUs", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench_production_"))
    rows: list[dict[str, Any]] = []
    with bench_database(keepdb=args.keepdb) as database, processes_running() as processes:
        from django.contrib.auth.models import Group
        from django_q.brokers import get_broker

        from apps.customers.models import Customer
        from apps.platform.services import api_token_create
        from tests.factories import UserFactory

        data_make(args)
        get_broker().purge_queue()
        user = UserFactory(is_staff=False, is_superuser=False)
        user.groups.add(Group.objects.get(name="integration"))
        _, token = api_token_create(user=user, name="bench production", scopes=["ingest"])
        generated = Customer.objects.filter(external_id__startswith="gen1-c").order_by("pk")
        bodies: dict[str, list[Any]] = {
            "customers": [],
            "healthz": [],
            "events": [
                {"customer_external_id": key, "name": "bench"}
                for key in generated.values_list("external_id", flat=True)[:EVENT_CUSTOMERS]
            ],
        }
        # The workers under the production settings too (web_env: the same SECRET_KEY signs and checks the tasks).
        env = {
            **web_env(worker_env(database, workers=int(os.environ.get("Q_WORKERS", "2"))), port=0),
            "DATABASE_URL": database_url(database, application="worker"),
        }
        workers_start(args, env, processes)
        statements_profile(token)
        worker_pids = [process.pid for process in processes]
        for setup in args.setups:
            rows += setup_run(
                args, setup, env=env, token=token, bodies=bodies, worker_pids=worker_pids, scratch=scratch
            )
    print(markdown(rows))
    print(f"end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
