"""
A real django-q2 worker for end-to-end tests (this module holds no tests): `manage.py qcluster` started as a
subprocess on the test database (PostgreSQL: SQLite's test database lives in memory), stopped with its whole
process group, and a bounded poll for what it does. Its log goes to a file (a pipe nobody reads would fill up
and block a long-lived worker); the log's tail is shown when the worker dies or a wait times out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
WAIT_LIMIT_SECONDS = 60.0
POLL_SECONDS = 0.1

Seen = TypeVar("Seen")


class Qcluster:
    """One running `manage.py qcluster` process (and its log file)."""

    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def database_url() -> str:
    """The URL of the database the tests use now (the test database pytest-django created)."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def qcluster_start(database_url: str, **env_extra: str) -> Qcluster:
    """Start `manage.py qcluster` with the test settings on `database_url` (Q_WORKERS=2 unless given)."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="loyalty_site.settings.test", Q_WORKERS="2")
    env.update(env_extra)
    log = tempfile.NamedTemporaryFile(prefix="qcluster-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    log.close()  # the child holds its own descriptor
    return Qcluster(process, Path(log.name))


def qcluster_stop(worker: Qcluster) -> None:
    """
    SIGTERM the cluster's main process, which stops its own processes in order (signalled all at once, the
    group hung until killed); SIGKILL whatever is left of its process group after 30 s.
    """
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
    worker.log_path.unlink(missing_ok=True)


def wait_until(
    read: Callable[[], Seen],
    done: Callable[[Seen], bool] = bool,
    *,
    what: str,
    workers: Iterable[Qcluster] = (),
    limit: float = WAIT_LIMIT_SECONDS,
) -> list[Seen]:
    """
    Poll `read()` every POLL_SECONDS until `done(value)`, for at most `limit` seconds; returns every value
    seen, in order (the last one is done), so a test can assert what held at each poll on the way. Fails
    at once if a worker died, with the tail of its log.
    """
    workers = list(workers)
    seen: list[Any] = []
    deadline = time.monotonic() + limit
    while True:
        value = read()
        seen.append(value)
        if done(value):
            return seen
        for worker in workers:
            assert worker.alive(), f"the qcluster died while waiting for {what}:\n{worker.log_tail()}"
        if time.monotonic() > deadline:
            tails = "\n".join(worker.log_tail() for worker in workers)
            raise AssertionError(f"{what}: not within {limit:.0f} s (last seen: {value!r})\n{tails}")
        time.sleep(POLL_SECONDS)
