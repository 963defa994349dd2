"""
gunicorn's threaded worker with the keep-alive connections spread evenly over the processes
(`worker_class` in loyalty_site/gunicorn.conf.py).

Every gunicorn process listens on the same socket and the first one to wake accepts: a burst of new connections
(16 keep-alive clients opening together, a proxy filling its upstream pool) lands unevenly — 10/6, 11/5 and 13/3
over two processes in three runs of benchmarks/bench_promotions.py. A keep-alive connection stays with the process
that accepted it, and one process runs Python on one core at a time (the GIL): the process holding 13 of 16 busy
connections made those clients wait for it while the other process idled.

So each process publishes how many connections it holds (a small array shared by the processes, created in the
master before it forks them), and a process that holds more than a live sibling does not accept for
`ACCEPT_YIELD_SECONDS`: the sibling, woken by the same connection, takes it. Past that pause it accepts again
whatever the counts say, so a sibling that is stuck or gone delays a connection by the pause at most. A single
process never pauses. Nothing else changes: the same threads, keep-alive, timeouts and requests.
"""

import logging
import multiprocessing
import os
import time
import traceback
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]  # (no types shipped)
from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

# Long enough for a sibling to wake and accept (well under a millisecond when it has a thread free), short enough
# that a connection waits little when the sibling cannot take it.
ACCEPT_YIELD_SECONDS = 0.01
# Slots for the processes' counts: WEB_CONCURRENCY at most this (more processes are not balanced, only counted).
MAX_PROCESSES = 64

# (pid, connections held) per slot. Created at import, which happens in gunicorn's master (it loads the worker
# class before it forks the processes): every process shares this memory.
_slots = multiprocessing.RawArray("q", 2 * MAX_PROCESSES)
_slots_lock = multiprocessing.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (alive, another user's: not one of ours, but not to be taken either)
        return True
    return True


class BalancedThreadWorker(ThreadWorker):
    """`gthread` that leaves a new connection to a sibling process holding fewer connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slot: int | None = None
        self._yield_until = 0.0
        super().__init__(*args, **kwargs)

    def init_process(self) -> None:
        pid = os.getpid()
        with _slots_lock:  # a slot that is free or whose process is gone (a recycled worker)
            for slot in range(MAX_PROCESSES):
                holder = _slots[2 * slot]
                if holder == 0 or holder == pid or not _alive(holder):
                    _slots[2 * slot], _slots[2 * slot + 1] = pid, 0
                    self._slot = slot
                    break
        super().init_process()

    def _publish(self) -> None:
        if self._slot is not None:
            _slots[2 * self._slot + 1] = self.nr_conns

    def _fewest_elsewhere(self) -> int | None:
        """The fewest connections a live sibling holds (None: no sibling)."""
        fewest = None
        for slot in range(MAX_PROCESSES):
            pid = _slots[2 * slot]
            if pid == 0 or slot == self._slot:
                continue
            held = _slots[2 * slot + 1]
            if (fewest is None or held < fewest) and _alive(pid):
                fewest = held
        return fewest

    # ThreadWorker.run() accepts while `nr_conns < worker_connections`, checked on each turn of its loop (after
    # every batch of events): the count is published there, and during a pause the limit reads as "full".
    @property
    def worker_connections(self) -> int:
        self._publish()
        if self._yield_until and time.monotonic() < self._yield_until:
            return min(self.nr_conns, self._worker_connections)
        return self._worker_connections

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._worker_connections = value

    def accept(self, listener: Any) -> None:
        # After a pause the next connection is taken whatever the counts say: a sibling that is stuck, full or slow
        # to wake (a busy machine) delays a connection by one pause, never more.
        paused = self._yield_until > 0
        if not paused and self._slot is not None and self.cfg.workers > 1:
            fewest = self._fewest_elsewhere()
            if fewest is not None and fewest < self.nr_conns:
                self._yield_until = time.monotonic() + ACCEPT_YIELD_SECONDS
                self.set_accept_enabled(False)
                return
        self._yield_until = 0.0
        super().accept(listener)
        self._publish()

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # Wake when a pause ends (the loop then accepts again) rather than after up to a second without events.
        pause_left = self._yield_until - time.monotonic()
        if not self._accepting and pause_left > 0:
            timeout = min(timeout, pause_left)
        super().wait_for_and_dispatch_events(timeout)


# --- The access log -----------------------------------------------------------------------------------------------

# gunicorn's default `access_log_format` (Apache's "combined" format).
COMBINED_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


class AccessLogger(glogging.Logger):
    """
    gunicorn's logger (`logger_class` in loyalty_site/gunicorn.conf.py) writing the same access line for less.

    For every request gunicorn's `Logger.access` builds a dict of ~20 atoms plus one entry per request header,
    response header and WSGI environ variable (~60 in all), wraps it in a case-insensitive dict and %-formats the
    line from it: ~60 µs of each request's ~5 ms, most of it for atoms the default format never reads. With the
    default format this writes the identical line from the nine atoms it uses, and the timestamp is formatted
    once a second; any other `access_log_format` goes through gunicorn's own code.
    """

    _stamp: tuple[int, str] = (0, "")

    def _now(self) -> str:
        second = int(time.time())
        stamp = self._stamp
        if stamp[0] != second:
            stamp = (second, self.now())
            self._stamp = stamp  # (a race between threads writes the same value)
        return stamp[1]

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if self.cfg.access_log_format != COMBINED_FORMAT:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled or not self.access_log.isEnabledFor(logging.INFO):
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        try:
            # As gunicorn's SafeAtoms: a double quote inside an atom is escaped (a client cannot forge fields).
            atoms = (
                environ.get("REMOTE_ADDR", "-"),
                "-",
                self._get_user(environ) or "-",
                self._now(),
                f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
                status,
                "-" if sent is None else str(sent),
                environ.get("HTTP_REFERER", "-"),
                environ.get("HTTP_USER_AGENT", "-"),
            )
            host, ident, user, stamp, request, status, sent_, referer, agent = (
                atom.replace('"', '\\"') if isinstance(atom, str) else atom for atom in atoms
            )
            line = f'{host} {ident} {user} {stamp} "{request}" {status} {sent_} "{referer}" "{agent}"'
            self.access_log.info(line)  # (no arguments: the line is not %-formatted again)
        except Exception:
            self.error(traceback.format_exc())
