"""
The one way every app hands work to the django-q2 queue, and what counts as a transient database error.

`enqueue_on_commit(func_path, *args)` queues `func_path(*args)` once the current transaction commits
(at once outside a transaction); a rolled-back write enqueues nothing. With the `TASKS_SYNC` setting
(environment variable `TASKS_SYNC`, default off) the function runs inline right after the commit instead,
in the process that wrote: tests, demos and one-process set-ups need no `qcluster`.

The enqueue is deliberately best-effort (`robust`: an unreachable broker is logged, the write stands):
every queued task is also recoverable from the database — outbox events by the outbox sweep, runs by
`runs_retry_due`, bulk chunks by the bulk tick — so a lost enqueue delays work, it never loses it.

**Coalescing** (issue 12): a task registered with `task_coalesce` — an outbox consumer's per-event task whose
consumer also has a *drain* task (no arguments: it claims and processes every pending event of the consumer, in
batches) — is not queued once per call. After the writer's commit, `drain_request` asks the registered
`request` (the outbox's marker: "a drain of this consumer is queued and has not started") and sends ONE drain
task only when none is; calls of one transaction ask once. A drain clears the marker before its first claim, so
a write that found the marker set committed before that claim began and is seen by it; a write committing
after the clear finds no marker and sends a new drain. `enqueue_on_commit(..., coalesce=False)` (the outbox
sweep's re-drive of one event) and `TASKS_SYNC` queue the per-event task as before. `drain_run` is the drains'
loop (the engine's and loyalty's): batches until a short claim, then a short linger holding the marker so that
the writes of the next moment send nothing and one claim takes them all.

This module imports no app.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections, transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

# Database errors after which the same work, retried on a fresh connection, may well succeed: a lost or
# terminated connection (OperationalError / InterfaceError), a deadlock or a serialization failure
# (PostgreSQL reports both as OperationalError subclasses), "database is locked" on SQLite.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Coalescing:
    """
    How the calls of a coalesced task become drain tasks: `drain` (dotted path, no arguments) processes every
    pending unit of work the calls stood for; `active()` says whether to coalesce now (else one task per call);
    after the writer's commit, `queued()` (one read) says whether a drain is queued and not started, and if not,
    `request()` takes that mark and returns True when the caller must send the drain (no one else took it).
    A drain calls `started()` (clear the mark, committed) before each claim that must see every write committed
    before it; `linger()` sets the mark on behalf of a drain that will claim again shortly and returns True when it
    holds it (False: a queued drain holds it already). See `drain_run`.
    """

    drain: str
    active: Callable[[], bool]
    queued: Callable[[], bool]
    request: Callable[[], bool]
    started: Callable[[], None] = lambda: None
    linger: Callable[[], bool] = lambda: False


_coalesced: dict[str, Coalescing] = {}


def task_coalesce(func_path: str, coalescing: Coalescing | None) -> None:
    """Coalesce `func_path`'s calls into `coalescing.drain` tasks from now on (None: queue them one by one again)."""
    if coalescing is None:
        _coalesced.pop(func_path, None)
    else:
        _coalesced[func_path] = coalescing


def _coalescing(func_path: str) -> Coalescing | None:
    coalescing = _coalesced.get(func_path)
    if coalescing is None or getattr(settings, "TASKS_SYNC", False) or not coalescing.active():
        return None
    return coalescing


def drain_request(func_path: str) -> None:
    """
    Send `func_path`'s drain task now unless one is queued and not yet started (a drain that found more work
    than one batch asks this, so another worker can take a share). Best effort: the outbox sweep is the net.
    """
    coalescing = _coalesced.get(func_path)
    if coalescing is not None:
        _drain_send(coalescing)


# How long a drain whose claim came back short (but not empty) waits, holding its consumer's mark, before it
# claims again: the writes of that window find the mark and send nothing (one read each), and one claim takes
# them all. It adds at most this much to an event's latency, and keeps a worker while writes keep coming.
DRAIN_LINGER = 0.05


def drain_run(
    func_path: str,
    *,
    fresh: Callable[[int], int],
    backlog: Callable[[int], int],
    limit: int,
    seconds: float,
    linger: float | None = None,
    what: str = "drain",
) -> int:
    """
    The loop of a coalesced task's drain (`func_path` the coalesced per-event task): clear the mark, then claim
    and process batches — `fresh(n)` and `backlog(n)` each claim and process up to `n` units and return how many
    they took (each retried on a transient database error) — until a claim comes back short. Returns the units
    taken.

    - The backlog is claimed after a short fresh claim until a backlog claim comes back short: once per drain
      when there is no backlog, not on every claim (events that age past the grace while this drain lingers are
      the next drain's, or the sweep's).
    - After a full batch it asks for another drain (`drain_request`: sent unless one is queued), so a free worker
      takes a share of a backlog; after `seconds` it stops, leaving the rest to that drain or the next write's.
    - After a short claim that took something, it lingers: it takes the mark (`linger()`; when a queued drain
      holds it already, that drain claims next and this one stops), sleeps `linger` seconds (`DRAIN_LINGER`),
      clears the mark and claims again. Every clearing of the mark is followed by a claim of the one who cleared
      it, so a write that found the mark (after its commit) is seen by a claim that begins after it. After an
      empty claim it stops with the mark cleared: the next write sends a drain.
    """
    if linger is None:  # the DRAIN_LINGER_SECONDS setting; 0 turns lingering off
        linger = float(getattr(settings, "DRAIN_LINGER_SECONDS", DRAIN_LINGER))
    coalescing = _coalesced.get(func_path)
    started = coalescing.started if coalescing is not None else (lambda: None)
    started()
    deadline = time.monotonic() + seconds
    taken = 0
    backlog_left = True  # until a backlog claim comes back short
    while True:
        count = retry_transient(lambda: fresh(limit), what=what)
        if count < limit and backlog_left:
            rest = limit - count
            old = retry_transient(lambda: backlog(rest), what=what)  # noqa: B023 (called at once)
            backlog_left = old >= rest
            count += old
        taken += count
        if count >= limit:
            drain_request(func_path)  # more may be pending: a free worker can take a share
            if time.monotonic() >= deadline:
                return taken
            continue
        if count == 0 or linger <= 0 or coalescing is None or time.monotonic() + linger >= deadline:
            return taken
        if not coalescing.linger():
            return taken  # a drain is queued: it clears the mark and claims after every write that found it
        time.sleep(linger)
        retry_transient(started, what=what)


def _drain_send(coalescing: Coalescing) -> None:
    try:
        if coalescing.queued():  # the common case under load: one read, nothing written
            return
        if _queue_in_transaction(in_block=False):
            # ORM broker: the marker and the drain's queue row commit together (no marker without its task)
            with transaction.atomic():
                if coalescing.request():
                    enqueue_many_on_commit(coalescing.drain, [()])
            return
        if coalescing.request():
            task_send(coalescing.drain)
    except Exception:  # best effort, as every enqueue: the outbox sweep re-drives what is lost
        logger.exception("drain request of %s failed", coalescing.drain)


def _drain_on_commit(coalescing: Coalescing) -> None:
    """`_drain_send` after the current transaction commits, once per transaction and drain task."""
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        _drain_send(coalescing)
        return
    # The transaction's list of on-commit callbacks identifies it: Django replaces the list at each commit and
    # rollback (and at a savepoint's rollback, which may have dropped our callback: then it is registered again).
    # A callback that ran already (callbacks run by hand, as tests do) no longer counts either.
    pending: tuple[list[Any], dict[str, list[bool]]] | None = getattr(connection, "_drains_on_commit", None)
    if pending is None or pending[0] is not connection.run_on_commit:
        pending = (connection.run_on_commit, {})
        connection._drains_on_commit = pending  # type: ignore[attr-defined]
    ran = pending[1].get(coalescing.drain)
    if ran is not None and not ran[0]:
        return
    ran = pending[1][coalescing.drain] = [False]

    def send() -> None:
        ran[0] = True
        _drain_send(coalescing)

    transaction.on_commit(send, robust=True)


def enqueue_on_commit(func_path: str, *args: Any, coalesce: bool = True, **kwargs: Any) -> None:
    """
    Queue `func_path(*args, **kwargs)` on django-q2 for when the current transaction commits — or, for a
    coalesced task (`task_coalesce`; not with `coalesce=False`), its drain task unless one is queued.

    With the ORM broker on this database the queue row is written inside the transaction: it becomes
    visible to workers exactly when the write commits (and vanishes with a rollback), in the same commit —
    one commit per request instead of two, and no window where the write is committed but its task not
    queued. With Redis (or `TASKS_SYNC`), the task is sent after the commit.
    """
    if coalesce and not kwargs and (coalescing := _coalescing(func_path)) is not None:
        _drain_on_commit(coalescing)
        return
    if _queue_in_transaction():
        if kwargs:  # task options (hook, group, timeout, ...) or keyword arguments: django-q2's own path
            task_send(func_path, *args, **kwargs)
        else:
            # the queue row built directly, as for many (a single-event POST's hot path: no async_task call)
            enqueue_many_on_commit(func_path, [args])
        return
    transaction.on_commit(lambda: task_send(func_path, *args, **kwargs), robust=True)


def enqueue_many_on_commit(func_path: str, calls: Sequence[tuple[Any, ...]]) -> None:
    """
    `enqueue_on_commit(func_path, *args)` for each `args` in `calls`. With the ORM broker inside a transaction
    the queue rows are ONE insert (the packages built exactly as django-q2's `async_task` builds them);
    with Redis the packages are pushed in one RPUSH after the commit; otherwise each task is sent after the
    commit, a failed send logged and the rest still sent.
    """
    if not calls:
        return
    if (coalescing := _coalescing(func_path)) is not None:
        _drain_on_commit(coalescing)
        return
    if _queue_in_transaction():
        from django_q.conf import Conf

        broker = _broker()
        if Conf.SYNC or not hasattr(broker, "get_connection"):
            for args in calls:
                task_send(func_path, *args)
            return
        from django.utils import timezone
        from django_q.models import OrmQ

        now = timezone.now()
        key = broker.list_key or Conf.CLUSTER_NAME
        broker.get_connection().bulk_create(
            [OrmQ(key=key, payload=_task_package(func_path, args, now), lock=now) for args in calls]
        )
        return

    def send_all() -> None:
        if _redis_push_many(func_path, calls):
            return
        for args in calls:
            try:
                task_send(func_path, *args)
            except Exception:  # best effort, as one enqueue_on_commit each: the sweeps re-drive what is lost
                logger.exception("enqueue of %s%r failed", func_path, args)

    transaction.on_commit(send_all, robust=True)


def _task_package(func_path: str, args: tuple[Any, ...], now: Any) -> str:
    """The signed package django-q2's `async_task(func_path, *args)` would queue (no options, no kwargs)."""
    from django_q.conf import Conf
    from django_q.humanhash import uuid
    from django_q.signals import pre_enqueue
    from django_q.signing import SignedPackage

    name, task_id = uuid()
    task: dict[str, Any] = {"id": task_id, "name": name, "func": func_path, "args": tuple(args)}
    if Conf.CACHED:
        task["cached"] = Conf.CACHED
    if Conf.ACK_FAILURES:
        task["ack_failure"] = Conf.ACK_FAILURES
    task["kwargs"] = {}
    task["started"] = now
    pre_enqueue.send(sender="django_q", task=task)
    return SignedPackage.dumps(task)


def _redis_push_many(func_path: str, calls: Sequence[tuple[Any, ...]]) -> bool:
    """
    With the Redis broker, queue every call's package in one RPUSH (one round trip instead of one per task);
    False (nothing sent) with another broker or `sync`. A failed push is logged: the sweeps re-drive the work.
    """
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf

    if getattr(settings, "TASKS_SYNC", False):
        return False
    broker = _broker()
    if Conf.SYNC or not isinstance(broker, Redis):
        return False
    from django.utils import timezone

    now = timezone.now()
    try:
        broker.connection.rpush(broker.list_key, *(_task_package(func_path, args, now) for args in calls))
    except Exception:  # best effort, as task_send: the outbox sweep and the other sweeps re-drive what is lost
        logger.exception("enqueue of %s tasks %s failed", len(calls), func_path)
    return True


# (process id, broker): django-q2's `async_task` makes a new broker per call unless given one, which with Redis
# is a new connection and its handshake (HELLO, CLIENT SETINFO, SELECT: ~1 ms, far more on a busy machine) per
# task sent. One per process instead (a forked child makes its own); redis-py's client is thread-safe.
_process_broker: tuple[int, Any] | None = None


def _broker() -> Any:
    global _process_broker
    if _process_broker is None or _process_broker[0] != os.getpid():
        from django_q.brokers import get_broker

        _process_broker = (os.getpid(), get_broker())
    return _process_broker[1]


def _queue_in_transaction(using: str = DEFAULT_DB_ALIAS, *, in_block: bool = True) -> bool:
    """The ORM broker on this database (and, with `in_block`, inside a transaction): queue rows are ours to write."""
    if getattr(settings, "TASKS_SYNC", False):
        return False
    broker_alias = getattr(settings, "Q_CLUSTER", {}).get("orm")
    return broker_alias == using and (connections[using].in_atomic_block or not in_block)


def task_send(func_path: str, *args: Any, **kwargs: Any) -> None:
    """Queue (or, with TASKS_SYNC, run) a task now; callers normally go through `enqueue_on_commit`."""
    if getattr(settings, "TASKS_SYNC", False):
        import_string(func_path)(*args, **kwargs)
        return
    from django_q.tasks import async_task

    if "broker" not in kwargs and "cluster" not in kwargs:
        kwargs["broker"] = _broker()  # this process's broker: no new Redis connection per task
    async_task(func_path, *args, **kwargs)


def db_error_is_transient(error: BaseException) -> bool:
    """True for a lost connection, a deadlock, a serialization failure (also when it is the direct cause)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT_DB_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


def db_connections_recover() -> None:
    """
    After a transient database error outside any transaction: drop connections that no longer work, so
    the next query opens a fresh one (Django would otherwise keep using a connection the server killed).
    """
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue  # the enclosing atomic block's exit rolls back (or drops the connection)
        try:
            connection.close_if_unusable_or_obsolete()
        except DatabaseError:
            connection.close()


def retry_transient(
    work: Callable[[], Result],
    *,
    attempts: int = 4,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    what: str = "task",
) -> Result:
    """
    Run `work()`; when it fails with a transient database error, recover the connections and run it again
    after an exponential back-off (`base_delay` x 2^n seconds, capped), at most `attempts` times in all.
    The last error is re-raised. `work` must be safe to run twice (idempotent or fully transactional).
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as error:
            # Inside a caller's transaction the connection cannot be replaced: the caller retries, not us.
            in_transaction = any(connection.in_atomic_block for connection in connections.all(initialized_only=True))
            if attempt >= attempts or in_transaction or not db_error_is_transient(error):
                raise
            delay = min(base_delay * 2 ** (attempt - 1), max_delay)
            logger.warning("%s: transient database error (attempt %s, retry in %.1fs): %s", what, attempt, delay, error)
            db_connections_recover()
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
