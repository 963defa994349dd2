"""
loyalty_site/gunicorn_worker.py: gunicorn (loyalty_site/gunicorn.conf.py, 2 processes x 4 threads) spreads a burst
of keep-alive connections evenly over its processes, and a process alone never pauses its accepts.

gunicorn runs for real with a WSGI app that answers its process id, so each connection says which process holds it.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from loyalty_site import gunicorn_worker

ROOT = Path(__file__).resolve().parents[2]
APP = """
import os

def application(environ, start_response):
    environ["wsgi.input"].read()
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path: Path):
    """Start gunicorn with the project's config and the pid app: yields start(processes) -> port."""
    (tmp_path / "pidapp.py").write_text(APP)
    started: list[subprocess.Popen[bytes]] = []

    def start(processes: int) -> int:
        port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(processes)}
        env["WEB_THREADS"] = "4"
        command = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "loyalty_site/gunicorn.conf.py")]
        command += ["--access-logfile", "/dev/null", "--chdir", str(tmp_path), "pidapp"]
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        deadline = time.monotonic() + 60
        while True:  # listening
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                probe.request("GET", "/")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        seen: set[str] = set()
        while len(seen) < processes and time.monotonic() < deadline:  # every process booted and answering
            seen |= burst(port, 8)[0]
        return port

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def burst(port: int, count: int) -> tuple[frozenset[str], Counter[str]]:
    """Open `count` keep-alive connections at once, one request each, all kept open until every one answered."""
    answers: list[str] = []
    connections: list[http.client.HTTPConnection] = []
    lock = threading.Lock()

    errors: list[BaseException] = []

    def one() -> None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/")
            pid = connection.getresponse().read().decode()
        except OSError as error:
            errors.append(error)
            return
        with lock:
            answers.append(pid)
            connections.append(connection)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    if errors:
        raise errors[0]
    held = Counter(answers)
    return frozenset(held), held


def test_a_burst_of_connections_is_spread_evenly_over_the_processes(gunicorn):
    # given gunicorn as scripts/run production starts it: 2 processes x 4 threads
    port = gunicorn(2)
    for _ in range(3):
        # when 16 keep-alive clients connect together
        pids, held = burst(port, 16)
        # then each process holds about half of them (gunicorn's own gthread: 3/13, 5/11, 4/12 ... in 8 tries)
        assert len(pids) == 2
        assert max(held.values()) - min(held.values()) <= 2, held
        time.sleep(0.3)  # (the closed connections leave the counts)


def test_a_single_process_takes_every_connection(gunicorn):
    port = gunicorn(1)
    pids, held = burst(port, 24)
    assert len(pids) == 1 and sum(held.values()) == 24


class FakeWorker(gunicorn_worker.BalancedThreadWorker):
    """The accept decision alone: no sockets, no gunicorn set-up; `accepted` counts what ThreadWorker would accept."""

    def __init__(self, *, workers: int, held: int, sibling_holds: int | None) -> None:
        self.cfg = type("Cfg", (), {"workers": workers, "threads": 4})()
        self.nr_conns, self._slot, self._yield_until, self._accepting = held, 0, 0.0, True
        self._worker_connections = 1000
        self.sibling_holds = sibling_holds
        self.accepted = 0

    def _fewest_elsewhere(self) -> int | None:
        return self.sibling_holds

    def set_accept_enabled(self, enabled: bool) -> None:
        self._accepting = enabled


@pytest.fixture
def accepts(monkeypatch):
    def fake_accept(worker, listener):
        worker.nr_conns += 1
        worker.accepted += 1

    monkeypatch.setattr(gunicorn_worker.ThreadWorker, "accept", fake_accept)
    clock = [1000.0]
    monkeypatch.setattr(gunicorn_worker.time, "monotonic", lambda: clock[0])
    return clock


def test_a_process_holding_more_than_a_sibling_pauses_then_accepts_whatever_the_counts(accepts):
    worker = FakeWorker(workers=2, held=5, sibling_holds=3)
    worker.accept(None)
    assert (worker.accepted, worker._accepting) == (0, False)  # left to the sibling
    assert worker.worker_connections == 5  # run() sees it full: the listener stays off during the pause
    accepts[0] += gunicorn_worker.ACCEPT_YIELD_SECONDS
    assert worker.worker_connections == 1000  # the pause is over: run() listens again
    accepts[0] += 5  # (however late the next connection comes)
    worker.accept(None)
    assert worker.accepted == 1  # after the pause: taken although the sibling still holds fewer
    worker.accept(None)
    assert worker.accepted == 1 and not worker._accepting  # the next one: the counts decide again


@pytest.mark.parametrize(("workers", "held", "sibling_holds"), [(2, 3, 3), (2, 3, 5), (2, 9, None), (1, 9, None)])
def test_a_process_accepts_when_no_live_sibling_holds_fewer(accepts, workers, held, sibling_holds):
    worker = FakeWorker(workers=workers, held=held, sibling_holds=sibling_holds)
    worker.accept(None)
    assert (worker.accepted, worker._accepting) == (1, True)
