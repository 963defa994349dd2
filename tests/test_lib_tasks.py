"""The one enqueue helper and the transient-error retry of `loyalty_site.lib.tasks`."""

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from loyalty_site.lib import tasks

CALLS: list[tuple] = []


def record(*args, **kwargs) -> None:
    CALLS.append((args, kwargs))


@pytest.fixture(autouse=True)
def _clean():
    CALLS.clear()
    yield
    CALLS.clear()


@pytest.mark.django_db
def test_enqueue_on_commit_sends_after_commit_only_with_a_broker_outside_the_database(
    monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.Q_CLUSTER = {**{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}, "redis": "redis://x"}
    sent: list[tuple] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: sent.append((func, args)))

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            tasks.enqueue_on_commit("tests.test_lib_tasks.record", 1)
            raise RuntimeError("rolled back")
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 2)
        assert sent == []  # not before the commit

    assert sent == [("tests.test_lib_tasks.record", (2,))]
    assert CALLS == []  # queued, not run


@pytest.mark.django_db(transaction=True)
def test_with_the_orm_broker_the_queue_row_commits_and_rolls_back_with_the_write(settings):
    from django_q.models import OrmQ

    assert settings.Q_CLUSTER.get("orm") == "default"
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 1)
        assert OrmQ.objects.count() == 1  # written inside the transaction...
        raise RuntimeError("rolled back")
    assert OrmQ.objects.count() == 0  # ...and gone with it

    with transaction.atomic():
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 2)
    tasks.enqueue_on_commit("tests.test_lib_tasks.record", 3)  # outside a transaction: queued at once

    assert [row.task["args"] for row in OrmQ.objects.order_by("pk")] == [(2,), (3,)]
    assert CALLS == []  # queued, not run


@pytest.mark.django_db
def test_tasks_sync_runs_the_task_inline_after_commit(settings, django_capture_on_commit_callbacks):
    settings.TASKS_SYNC = True

    with django_capture_on_commit_callbacks(execute=True):
        tasks.enqueue_on_commit("tests.test_lib_tasks.record", 3, flag=True)
        assert CALLS == []

    assert CALLS == [((3,), {"flag": True})]


def test_lost_connections_deadlocks_and_their_direct_causes_are_transient_other_errors_are_not():
    wrapped = ValueError("wrapper")
    wrapped.__cause__ = OperationalError("server closed the connection unexpectedly")

    assert tasks.db_error_is_transient(OperationalError("deadlock detected")) is True
    assert tasks.db_error_is_transient(InterfaceError("connection already closed")) is True
    assert tasks.db_error_is_transient(wrapped) is True
    assert tasks.db_error_is_transient(IntegrityError("duplicate key")) is False
    assert tasks.db_error_is_transient(ValueError("bad input")) is False


def test_retry_transient_retries_with_back_off_and_gives_up_after_its_attempts(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(tasks.time, "sleep", delays.append)
    monkeypatch.setattr(tasks, "db_connections_recover", lambda: None)
    outcomes = [OperationalError("lost"), OperationalError("lost"), "done"]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert tasks.retry_transient(flaky) == "done"
    assert delays == [0.2, 0.4]

    def always_lost() -> None:
        raise InterfaceError("gone")

    delays.clear()
    with pytest.raises(InterfaceError):
        tasks.retry_transient(always_lost, attempts=3)
    assert delays == [0.2, 0.4]


def test_retry_transient_does_not_retry_other_errors(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(tasks.time, "sleep", lambda delay: None)

    def duplicate() -> None:
        calls.append(1)
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        tasks.retry_transient(duplicate)
    assert calls == [1]
