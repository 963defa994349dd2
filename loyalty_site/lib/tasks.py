"""
The one way every app hands work to the django-q2 queue, and what counts as a transient database error.

`enqueue_on_commit(func_path, *args)` queues `func_path(*args)` once the current transaction commits
(at once outside a transaction); a rolled-back write enqueues nothing. With the `TASKS_SYNC` setting
(environment variable `TASKS_SYNC`, default off) the function runs inline right after the commit instead,
in the process that wrote: tests, demos and one-process set-ups need no `qcluster`.

The enqueue is deliberately best-effort (`robust`: an unreachable broker is logged, the write stands):
every queued task is also recoverable from the database — outbox events by the outbox sweep, runs by
`runs_retry_due`, bulk chunks by the bulk tick — so a lost enqueue delays work, it never loses it.

This module imports no app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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


def enqueue_on_commit(func_path: str, *args: Any, **kwargs: Any) -> None:
    """
    Queue `func_path(*args, **kwargs)` on django-q2 for when the current transaction commits.

    With the ORM broker on this database the queue row is written inside the transaction: it becomes
    visible to workers exactly when the write commits (and vanishes with a rollback), in the same commit —
    one commit per request instead of two, and no window where the write is committed but its task not
    queued. With Redis (or `TASKS_SYNC`), the task is sent after the commit.
    """
    if _queue_in_transaction():
        task_send(func_path, *args, **kwargs)
        return
    transaction.on_commit(lambda: task_send(func_path, *args, **kwargs), robust=True)


def _queue_in_transaction(using: str = DEFAULT_DB_ALIAS) -> bool:
    if getattr(settings, "TASKS_SYNC", False):
        return False
    broker_alias = getattr(settings, "Q_CLUSTER", {}).get("orm")
    return broker_alias == using and connections[using].in_atomic_block


def task_send(func_path: str, *args: Any, **kwargs: Any) -> None:
    """Queue (or, with TASKS_SYNC, run) a task now; callers normally go through `enqueue_on_commit`."""
    if getattr(settings, "TASKS_SYNC", False):
        import_string(func_path)(*args, **kwargs)
        return
    from django_q.tasks import async_task

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
