"""
What the end-to-end benchmarks of the event path share (`bench_events.py`, `bench_drain.py`,
`bench_connectors.py`): a throw-away PostgreSQL database, the two bench workflows and their events, a
`manage.py qcluster` subprocess on it (the ORM broker, as in production without Redis), gunicorn as
`scripts/run production` starts it, an HTTP client in a separate process (the calling script with `--client`),
client threads, CPU read from /proc, percentiles and the load average. Not a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")

# The test settings' key: gunicorn (production settings) must decrypt what the benchmark's process stored.
FIELD_ENCRYPTION_KEY = "Fh1q0pVbH3X0b1m8cZl9nI8cN0pJv1yQe2m6sTQ3c0k="

Job = TypeVar("Job")


# --- figures ---------------------------------------------------------------------------------------------


def load() -> str:
    return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def tree_cpu(root: int) -> float:
    """
    CPU seconds (user + system) used so far by process `root` and its descendants (Linux /proc): each live
    process's own time plus that of its children that exited and were waited for (a qcluster recycles its
    workers every 500 tasks: their CPU would otherwise vanish from the sum with them).
    """
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
        times[int(entry)] = sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


# --- the database and what the benchmarks put in it ------------------------------------------------------


@contextmanager
def bench_database(
    *, quiet: Sequence[str] = (), test_suffix: str | None = None, keepdb: bool = False
) -> Iterator[dict[str, Any]]:
    """
    Django set up on a fresh test database (PostgreSQL only; `test_<name>`, or `<name><test_suffix>`); yields
    its settings and drops it at the end unless `keepdb` (then a kept one is reused).
    """
    import logging

    import django

    django.setup()
    for name in ("django-q", *quiet):
        logging.getLogger(name).setLevel(logging.WARNING if name == "django-q" else logging.ERROR)
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL: set DATABASE_URL.", file=sys.stderr)
        raise SystemExit(2)
    from django.test.utils import setup_test_environment

    setup_test_environment()
    database = connection.settings_dict
    if test_suffix is not None:
        database["TEST"] = {**database.get("TEST", {}), "NAME": f"{database['NAME']}{test_suffix}"}
    # serialize=False: no copy of the data for test rollbacks (with a kept database of 100k customers, serializing
    # it took minutes before the benchmark began).
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keepdb, serialize=False)
    try:
        yield database
    finally:
        connections.close_all()
        if not keepdb:
            connection.creation.destroy_test_db(database["NAME"], verbosity=0)


def tagging_workflow(*, name: str, trigger: dict[str, Any], tag: str) -> Any:
    """An active workflow "trigger -> add tag <tag>" (the effect the benchmarks wait for)."""
    from apps.automations import services

    workflow = services.workflow_create(
        name=name,
        definition={
            "schema": 1,
            "trigger": trigger,
            "steps": [{"id": "tag", "action": "customer.add_tags", "params": {"tags": [tag]}}],
        },
    )
    services.workflow_activate(workflow=workflow)
    return workflow


def bench_workflows() -> Any:
    """
    The two active workflows of the engine benchmarks: "event.custom named bench -> add tag Bench" and
    "order.created -> add tag Buyer + award 10 points"; returns the second.
    """
    from apps.automations import services

    tagging_workflow(
        name="Bench",
        trigger={"event": "event.custom", "where": {"field": "event.name", "op": "eq", "value": "bench"}},
        tag="Bench",
    )
    buyer = services.workflow_create(
        name="Buyer",
        definition={
            "schema": 1,
            "trigger": {"event": "order.created"},
            "steps": [
                {"id": "tag", "action": "customer.add_tags", "params": {"tags": ["Buyer"]}},
                {"id": "points", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Bench"}},
            ],
        },
    )
    services.workflow_activate(workflow=buyer)
    return buyer


def events_commit(customers: Iterable[Any], *, kind: str) -> float:
    """
    One event a customer, committed at once (a worker finds them all queued): `tag` a custom event "bench",
    `order` an order of 25.00 (its order.created). Returns the `time.perf_counter()` of the commit.

    The commit is stamped by the transaction's first on-commit callback, before the ones that queue the
    tasks: with Redis the tasks are sent after the commit, one by one by this process, and workers process
    them while the rest are still being sent — the drain starts at the commit, not when the sending ends
    (timed from the end, a drain of 200 events "took" 11 ms and the workers' CPU probe saw none of it).
    """
    from django.db import transaction

    from apps.customers import services as customer_services
    from tests.factories import make_order

    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        for customer in customers:
            if kind == "tag":
                customer_services.custom_event_record(customer=customer, name="bench")
            else:
                make_order(customer, total="25.00")
    return committed[0]


# --- the processes: worker, web, client --------------------------------------------------------------------


def worker_env(database: dict[str, Any], *, workers: int) -> dict[str, str]:
    """This process's environment pointed at the benchmark's database, with `workers` qcluster workers."""
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}?conn_max_age=600"
        ),
        "Q_WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
    }


def web_env(env: dict[str, str], *, port: int) -> dict[str, str]:
    """
    `env` with the production settings gunicorn runs under on 127.0.0.1:`port` (`WEB_CONCURRENCY` x
    `WEB_THREADS`, default 2 x 4). django-q2 signs each task with SECRET_KEY and a worker with another key
    drops it: the web gets this process's key (the test settings'), so the tasks it queues, the ones this
    process queues, and a qcluster under either settings all agree.
    """
    from django.conf import settings

    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.production",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": FIELD_ENCRYPTION_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
        "WEB_THREADS": os.environ.get("WEB_THREADS", "4"),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def qcluster_start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`manage.py qcluster` under `env` (see `worker_env`, `web_env`); stop it through `processes_running`."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def gunicorn_start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """gunicorn as `scripts/run production` starts it, under `env` (see `web_env`); wait with `web_wait`."""
    return subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "-c",
            "loyalty_site/gunicorn.conf.py",
            "--access-logfile",
            "/dev/null",
            "loyalty_site.wsgi",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def web_wait(port: int, *, timeout: float) -> None:
    """Until GET /healthz on 127.0.0.1:`port` answers (SystemExit after `timeout` seconds)."""
    deadline = time.time() + timeout
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            probe.request("GET", "/healthz")
            probe.getresponse().read()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.5)


@contextmanager
def processes_running() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to append started processes to; at the end they are terminated, last first (killed after 30 s)."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield processes
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def client_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden options of the client process (`--client`, see `client_run`)."""
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)


def client_run(
    script: str,
    jobs: list[Any],
    *,
    name: str,
    scratch: Path,
    port: int,
    threads: int,
    options: Sequence[str] = (),
    processes: int = 1,
) -> dict[str, Any]:
    """
    Run `script --client` (a separate process; `processes` of them at once, the jobs and threads dealt over them,
    so no client thread waits on another's GIL) on `jobs` against 127.0.0.1:`port` with `threads` threads in all and
    `options`; its result (JSON, with at least `failures` and `elapsed`; several processes' merged: samples,
    statuses and failures together, the longest `elapsed`), the failures counted on stdout.
    """
    processes = max(1, min(processes, threads))
    # Every process begins sending at the same moment, once all have started (`requests_client_main`).
    environment = {**os.environ, "BENCH_CLIENT_START_AT": str(time.time() + 0.5 + 0.15 * processes)}
    started = []
    for index in range(processes):
        jobs_file, out_file = scratch / f"{name}.{index}.jobs.json", scratch / f"{name}.{index}.out.json"
        jobs_file.write_text(json.dumps(jobs[index::processes]))
        share = threads // processes + (1 if index < threads % processes else 0)
        command = [sys.executable, script, "--client", "--url", f"127.0.0.1:{port}", *options]
        command += ["--jobs", str(jobs_file), "--out", str(out_file), "--threads", str(share)]
        started.append((subprocess.Popen(command, cwd=ROOT, env=environment), out_file))
    results = []
    for process, out_file in started:
        if process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, process.args)
        results.append(json.loads(out_file.read_text()))
    result: dict[str, Any] = results[0]
    for other in results[1:]:
        for key, value in other.items():
            if key == "elapsed":
                result[key] = max(result[key], value)
            elif isinstance(value, list):
                result[key] = result.get(key, []) + value
            elif isinstance(value, dict):
                merged = dict(result.get(key, {}))
                for inner, count in value.items():
                    merged[inner] = merged.get(inner, 0) + count
                result[key] = merged
    if result["failures"]:
        print(f"{name}: {len(result['failures'])} failed POSTs, first: {result['failures'][0]}")
    return result


def requests_client_main(args: argparse.Namespace) -> int:
    """
    A `--client` process for `client_run`: each job of `--jobs` is `{method, path, bodies, expect}` plus `seconds`
    (send until that many seconds have passed) or `count` (that many requests, default 1), and optionally `offset`
    (the first of `bodies` to send; they are cycled, `[]` for none). The jobs are dealt over `--threads` threads,
    each sending over one keep-alive connection with the Bearer `--token`. Writes the latency of each answered
    request (`samples`), `statuses`, `failures` (an unexpected status or a socket error) and `elapsed`.
    """
    jobs = json.loads(Path(args.jobs).read_text())
    host, port = args.url.split(":")
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    samples: list[float] = []
    statuses: dict[str, int] = {}
    failures: list[str] = []

    def send(share: list[dict[str, Any]]) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for job in share:
            bodies = [json.dumps(body) for body in job["bodies"]] or [None]
            deadline = time.perf_counter() + job["seconds"] if "seconds" in job else None
            sent = first = job.get("offset", 0)
            while time.perf_counter() < deadline if deadline is not None else sent - first < job.get("count", 1):
                body, sent = bodies[sent % len(bodies)], sent + 1
                started = time.perf_counter()
                try:
                    connection.request(job["method"], job["path"], body=body, headers=headers)
                    response = connection.getresponse()
                    content = response.read()
                except (OSError, http.client.HTTPException) as error:
                    failures.append(repr(error))
                    connection.close()
                    connection = http.client.HTTPConnection(host, int(port), timeout=60)
                    continue
                samples.append(time.perf_counter() - started)
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
                if response.status not in job["expect"]:
                    failures.append(f"{response.status}: {content[:300]!r}")
        connection.close()

    start_at = float(os.environ.get("BENCH_CLIENT_START_AT", "0"))
    time.sleep(max(0.0, start_at - time.time()))  # (several client processes: all begin together)
    elapsed = threads_run(jobs, threads=args.threads, send=send)
    Path(args.out).write_text(
        json.dumps({"samples": samples, "statuses": statuses, "failures": failures, "elapsed": elapsed})
    )
    return 0


def database_sessions_cpu() -> dict[int, float]:
    """CPU seconds used so far by each other session on the benchmark database (web and workers), by backend pid."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid: tree_cpu(pid) for (pid,) in cursor.fetchall()}


def client_run_measured(script: str, jobs: list[Any], *, token: str, web_pid: int, **run: Any) -> dict[str, Any]:
    """
    `client_run` (`run`: its keyword arguments but `options`; the Bearer `token` is passed on) with what it cost,
    in CPU seconds under `cpu`: the web server's process tree (`web_pid`), the database sessions (each session's
    own delta: one that began since counts whole, one that ended — a recycled worker's — is lost, so this can only
    undercount; a plain difference of sums once went negative) and the client process.
    """
    web_before, database_before = tree_cpu(web_pid), database_sessions_cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_before = children.ru_utime + children.ru_stime
    result = client_run(script, jobs, options=["--token", token], **run)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu"] = {
        "web": tree_cpu(web_pid) - web_before,
        "database": sum(cpu - database_before.get(pid, 0.0) for pid, cpu in database_sessions_cpu().items()),
        "client": children.ru_utime + children.ru_stime - client_before,
    }
    return result


def threads_run(jobs: list[Job], *, threads: int, send: Callable[[list[Job]], None]) -> float:
    """Split `jobs` over `threads` threads (`send(share)` each, shares dealt round-robin); seconds it took."""
    shares = [jobs[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=send, args=(share,)) for share in shares if share]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def paced_wait(due: float | None) -> None:
    """Sleep until the monotonic time `due` (None: at once)."""
    if due is not None:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
