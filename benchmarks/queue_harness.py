"""
What the end-to-end benchmarks that run a real worker share (`bench_events.py`, `bench_connectors.py`): a
throw-away PostgreSQL database (test_<name>), a `manage.py qcluster` subprocess on it (the ORM broker, as in
production without Redis), a one-step "trigger -> add tag" workflow, client threads and percentiles. Not a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.test")

Job = TypeVar("Job")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@contextmanager
def bench_database(*, quiet: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Django set up on a fresh test database (PostgreSQL only); yields its settings, destroys it at the end."""
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
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    database = connection.settings_dict
    try:
        yield database
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(database["NAME"], verbosity=0)


@contextmanager
def qcluster(database: dict[str, Any], *, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    """`manage.py qcluster` with `workers` processes on the benchmark's database; stopped at the end."""
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}?conn_max_age=600"
        ),
        "Q_WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
    }
    cluster = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(4)  # let the cluster's workers start
        yield cluster
    finally:
        cluster.terminate()
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()


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


def threads_run(jobs: list[Job], *, threads: int, send: Callable[[list[Job]], None]) -> float:
    """Split `jobs` over `threads` senders (`send(share)` each, closing its connections); seconds it took."""
    from django.db import connections

    def run(share: list[Job]) -> None:
        try:
            send(share)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run, args=(jobs[i::threads],)) for i in range(min(threads, len(jobs)))]
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
