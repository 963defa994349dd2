"""
The engine's outbox task claims and processes pending events in batches on PostgreSQL (issue 12): one
transaction and one commit per batch, disjoint batches for concurrent workers (SKIP LOCKED), every effect
exactly once; with a non-transactional action active it falls back to one event a task.
"""

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.automations import engine
from apps.automations import tasks as engine_tasks
from apps.automations.engine.claims import stale_after
from apps.automations.models import ActionEffect, WorkflowRun
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent, DomainEventReceipt
from apps.tagging.models import CustomerTag
from loyalty_site.lib import tasks
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory
from tests.threads import raised, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def no_queue(monkeypatch):
    """Committed events whose tasks are not run: the test runs the task itself."""
    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda *args, **kwargs: None)


def _events(count: int, start: int = 0) -> list[int]:
    for index in range(start, start + count):
        customer = CustomerFactory(external_id=f"b{index}")
        customer_services.custom_event_record(customer=customer, name="bench")
    return list(
        DomainEvent.objects.filter(name="event.custom", status="pending").order_by("pk").values_list("pk", flat=True)
    )


def _tagging() -> None:
    active_workflow(
        "bench", "event.custom", [add_tags("Bench")], where={"field": "event.name", "op": "eq", "value": "bench"}
    )


def _process(event_id: int) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        engine_tasks.process_domain_event(event_id)
    return [query["sql"] for query in captured.captured_queries]


def _commits(statements: list[str]) -> int:
    return sum(1 for statement in statements if statement.startswith("COMMIT"))


def _process_in_threads(ids: list[int], *, workers: int) -> list[BaseException]:
    """`workers` tasks started at once, each processing every `workers`-th event of `ids`; what they raised."""

    def share(index: int) -> Callable[[], None]:
        def work() -> None:
            for event_id in ids[index::workers]:
                engine_tasks.process_domain_event(event_id)

        return work

    return raised(run_together(*(share(index) for index in range(workers))))


def test_one_task_processes_a_batch_of_pending_events_in_one_commit(no_queue, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 10
    _tagging()
    ids = _events(12)

    first = _process(ids[0])

    # the first 10 pending events in one transaction; the other 2 are left for the next task
    assert _commits(first) == 1
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 10
    consumed = set(DomainEventReceipt.objects.filter(consumer="automations").values_list("event_id", flat=True))
    assert consumed == set(ids[:10])
    assert list(DomainEvent.objects.filter(pk__in=ids[10:]).values_list("status", flat=True)) == ["pending"] * 2

    second = _process(ids[11])

    assert _commits(second) == 1
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 12
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"processed"}
    assert WorkflowRun.objects.filter(status="succeeded").count() == ActionEffect.objects.count() == 12
    # pinned: a batch sharing a workflow costs the same statements whatever its size — the event's freshness,
    # the active workflows (one snapshot), BEGIN, the claim (events with their customers), the receipts read
    # again under the claim's locks, their custom events,
    # the set-based lane in one savepoint (the runs, the tag's look-up, the tags, the audit, the tag-added
    # events, the effect ledger, the step rows, the runs closed), the receipts, the settle (2), COMMIT; the first
    # batch also creates the tag (2 more). Was 5 + 31 per event (10 of them savepoints), then 9 + 22 per event.
    assert (len(first), len(second)) == (PER_BATCH + 2, PER_BATCH), "\n".join(second)
    # a task finding nothing left: freshness, workflows, BEGIN, the claim, COMMIT; nothing written
    assert len(_process(ids[0])) == 5


PER_BATCH = 20


def test_concurrent_tasks_take_disjoint_batches_and_every_effect_happens_once(no_queue, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 5
    _tagging()
    ids = _events(40)

    assert _process_in_threads(ids, workers=4) == []
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 40
    assert WorkflowRun.objects.count() == ActionEffect.objects.count() == 40
    assert DomainEventReceipt.objects.filter(consumer="automations").count() == 40
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"processed"}


def test_an_active_webhook_workflow_makes_the_task_process_its_own_event_only(no_queue, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 10
    _tagging()
    active_workflow(
        "hook",
        "customer.activated",
        [{"action": "notify.webhook", "params": {"url": "https://hooks.example.com/x", "secret": "whsec_c2VjcmV0"}}],
    )
    ids = _events(3)

    statements = _process(ids[1])

    assert CustomerTag.objects.filter(tag__name="Bench").count() == 1
    assert list(DomainEventReceipt.objects.filter(consumer="automations").values_list("event_id", flat=True)) == [
        ids[1]
    ]
    assert not [s for s in statements if "SKIP LOCKED" in s]


def test_a_failing_event_does_not_hold_back_the_rest_of_its_batch(no_queue, settings, monkeypatch):
    # the per-event path (the set-based lane's fallback; the lane's own case: test_engine_sets.py)
    settings.AUTOMATIONS_EVENT_BATCH = 10
    settings.AUTOMATIONS_EVENT_SETS = False
    _tagging()
    ids = _events(3)
    from apps.automations.engine import opening

    real = opening.domain_event_process

    def broken_for_the_second(*, event_id: int) -> list[int]:
        if event_id == ids[1]:
            raise ValueError("a bug")
        return real(event_id=event_id)

    monkeypatch.setattr(opening, "domain_event_process", broken_for_the_second)

    _process(ids[0])

    assert CustomerTag.objects.filter(tag__name="Bench").count() == 2
    statuses = dict(DomainEvent.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {ids[0]: "processed", ids[1]: "pending", ids[2]: "processed"}
    assert not WorkflowRun.objects.filter(trigger_event_id=ids[1]).exists()  # its savepoint rolled back
    # counted as failed in a batch: the next fresh batch leaves it to the sweep, which re-drives it alone
    assert DomainEvent.objects.get(pk=ids[1]).batch_claims == 1
    _events(1, start=3)
    _process(ids[0])
    assert DomainEvent.objects.get(pk=ids[1]).status == "pending"
    assert DomainEvent.objects.filter(status="pending").count() == 1


def _age(ids: list[int], minutes: int = 5) -> None:
    DomainEvent.objects.filter(pk__in=ids).update(created_at=timezone.now() - timedelta(minutes=minutes))


def _consumed() -> set[int]:
    return set(DomainEventReceipt.objects.filter(consumer="automations").values_list("event_id", flat=True))


def test_a_backlog_of_old_events_drains_in_batches_each_claimed_in_its_own_commit(no_queue, settings):
    """Events older than the outbox grace (arrivals outran the drain): their queued tasks drain them in batches."""
    settings.AUTOMATIONS_EVENT_BATCH = 10
    _tagging()
    ids = _events(23)
    _age(ids)

    per_task = [_process(event_id) for event_id in ids]

    # the first three tasks drain ceil(23 / 10) = 3 batches, oldest first: each a claim (batch_claims + 1, the
    # lease) committed on its own, then one transaction for the batch's effects and receipts
    batches = [set(ids[0:10]), set(ids[10:20]), set(ids[20:23])]
    run_inserts = [
        sum(1 for s in statements if s.startswith('INSERT INTO "automations_workflowrun"')) for statements in per_task
    ]
    assert [_commits(statements) for statements in per_task[:3]] == [2, 2, 2]
    assert run_inserts[:3] == [1, 1, 1] and sum(run_inserts) == 3  # the lane: one insert of runs per batch
    # the other 20 tasks find their events done and nothing left to claim: one empty claim each, nothing written
    assert all(_commits(statements) == 1 for statements in per_task[3:])
    assert not [s for statements in per_task[3:] for s in statements if s.startswith(("INSERT", "UPDATE"))]
    assert _consumed() == set().union(*batches)
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"processed"}
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 23
    assert WorkflowRun.objects.filter(status="succeeded").count() == ActionEffect.objects.count() == 23
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("batch_claims", flat=True)) == {1}


def test_a_poison_event_in_a_backlog_batch_is_isolated_and_then_goes_alone(no_queue, settings, monkeypatch):
    settings.AUTOMATIONS_EVENT_BATCH = 10
    _tagging()
    ids = _events(5)
    _age(ids)
    from apps.automations.engine import opening, sets

    real = sets.events_process_set
    real_one = opening.domain_event_process
    poison = ids[2]

    def lane(events, scope):
        if any(event.pk == poison for event in events):
            raise ValueError("a bug")
        return real(events, scope)

    def one(*, event_id: int) -> list[int]:
        if event_id == poison:
            raise ValueError("a bug")
        return real_one(event_id=event_id)

    monkeypatch.setattr(opening, "events_process_set", lane)
    monkeypatch.setattr(opening, "domain_event_process", one)

    _process(ids[0])

    # the four others processed in the batch; the poison event rolled back alone, counted as failed in a batch
    assert _consumed() == set(ids) - {poison}
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 4
    assert not WorkflowRun.objects.filter(trigger_event_id=poison).exists()
    row = DomainEvent.objects.get(pk=poison)
    assert (row.status, row.batch_claims, row.batch_claimed_at) == ("pending", 1, None)

    # its own task (or the sweep's re-drive) takes it alone, never in a batch again: it fails on its own
    with pytest.raises(ValueError, match="a bug"):
        _process(poison)
    assert _consumed() == set(ids) - {poison}

    # once the bug is gone it is processed alone, and every effect happened exactly once
    monkeypatch.setattr(opening, "domain_event_process", real_one)
    statements = _process(poison)
    assert not [s for s in statements if "SKIP LOCKED" in s]
    assert _consumed() == set(ids)
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 5
    assert WorkflowRun.objects.count() == ActionEffect.objects.count() == 5


class WorkerDied(BaseException):
    """Stands for the worker process dying mid-batch (nothing after it runs; the open transaction rolls back)."""


def test_events_of_a_backlog_batch_that_died_with_its_worker_go_alone_after_its_lease(no_queue, settings, monkeypatch):
    settings.AUTOMATIONS_EVENT_BATCH = 3
    _tagging()
    ids = _events(5)
    _age(ids)
    from apps.automations.engine import opening

    real = opening._claimed_process

    def dies(claimed, workflows):
        raise WorkerDied

    monkeypatch.setattr(opening, "_claimed_process", dies)
    with pytest.raises(WorkerDied):
        _process(ids[0])
    monkeypatch.setattr(opening, "_claimed_process", real)

    # the claim had committed: the three events are counted and leased, nothing else was written
    claims = dict(DomainEvent.objects.filter(pk__in=ids).values_list("pk", "batch_claims"))
    assert claims == {ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 0, ids[4]: 0}
    assert _consumed() == set() and WorkflowRun.objects.count() == 0

    # while the lease lasts their tasks leave them alone (the batch may still be at work)
    for event_id in ids[:3]:
        statements = _process(event_id)
        assert not [s for s in statements if s.startswith(("INSERT", "UPDATE")) or "SKIP LOCKED" in s]
    assert _consumed() == set()
    # a task of an unclaimed old event still drains the rest as a batch
    statements = _process(ids[3])
    assert [s for s in statements if "SKIP LOCKED" in s]
    assert _consumed() == {ids[3], ids[4]}

    # after the lease (the task timeout), each goes alone: no batch claims it again
    with time_machine.travel(timezone.now() + stale_after() + timedelta(seconds=1)):
        for event_id in ids[:3]:
            statements = _process(event_id)
            assert not [s for s in statements if "SKIP LOCKED" in s]
    assert _consumed() == set(ids)
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 5
    assert WorkflowRun.objects.count() == ActionEffect.objects.count() == 5


def test_concurrent_tasks_drain_a_backlog_in_disjoint_batches_every_effect_once(no_queue, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 5
    _tagging()
    ids = _events(40)
    _age(ids)

    assert _process_in_threads(ids, workers=4) == []
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 40
    assert WorkflowRun.objects.count() == ActionEffect.objects.count() == 40
    assert _consumed() == set(ids)
    # every event was taken by exactly one batch
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("batch_claims", flat=True)) == {1}


def _until_someone_waits_for_my_locks(seconds: float) -> None:
    """Return once another backend is blocked on a lock this connection holds (or after `seconds`)."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)


def test_a_backlog_batch_waits_for_a_lock_a_concurrent_claim_still_holds_on_its_events(no_queue, settings, monkeypatch):
    """
    Between a backlog batch's claim and its processing, a concurrent claim whose snapshot predates the claim's
    commit can hold the lock of the batch's events (PostgreSQL keeps the lock of a row that failed a locking
    SELECT's recheck until that transaction ends). The batch waits for it: skipped, its events would be left
    pending, leased, until the lease ends (the flake of the concurrent backlog test above: 35 of 40 tagged).
    """
    settings.AUTOMATIONS_EVENT_BATCH = 5
    _tagging()
    ids = _events(5)
    _age(ids)
    from apps.automations.engine import opening

    real = opening.retry_transient
    locked = threading.Event()

    def contended(process: Callable[[], int], *, what: str) -> int:
        """The batch's processing while another transaction holds its events' locks (until the batch waits)."""

        def hold() -> None:
            with transaction.atomic():
                list(DomainEvent.objects.filter(pk__in=ids).select_for_update(no_key=True))
                locked.set()
                _until_someone_waits_for_my_locks(seconds=10)

        def batch() -> int:
            locked.wait(10)
            return real(process, what=what)

        outcomes = run_together(hold, batch)
        assert raised(outcomes) == []
        return outcomes[1]

    monkeypatch.setattr(opening, "retry_transient", contended)

    _process(ids[0])

    assert _consumed() == set(ids)
    assert CustomerTag.objects.filter(tag__name="Bench").count() == 5
    assert set(DomainEvent.objects.filter(pk__in=ids).values_list("status", "batch_claims")) == {("processed", 1)}


def test_a_fresh_batch_leaves_old_events_to_the_backlog_path(no_queue, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 10
    _tagging()
    ids = _events(3)
    _age(ids[:1])

    _process(ids[1])

    assert _consumed() == {ids[1], ids[2]}
    assert DomainEvent.objects.get(pk=ids[0]).batch_claims == 0


def test_a_batch_leaves_alone_an_event_another_batch_processed_while_its_claim_waited_for_the_lock(
    no_queue, settings, monkeypatch, caplog
):
    # given orders (pending for loyalty too, so processing one does not touch its outbox row) and the
    # benchmark's "order -> tag + points" workflow
    from apps.automations.engine import opening
    from tests.factories import make_order
    from tests.loyalty.conftest import program_make

    settings.AUTOMATIONS_EVENT_BATCH = 10
    program_make()
    active_workflow(
        "buyer",
        "order.created",
        [add_tags("Buyer"), {"id": "p", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Bench"}}],
    )
    for customer in CustomerFactory.create_batch(4):
        make_order(customer, total="25.00")
    ids = list(DomainEvent.objects.filter(name="order.created").order_by("pk").values_list("pk", flat=True))
    recheck = opening._unconsumed_after_lock

    def another_batch_commits_first(claimed: list[DomainEvent]) -> list[DomainEvent]:
        # The interleaving: our claim's statement saw ids[1] without the engine's receipt, and another batch,
        # on another connection, committed its runs and receipt before our lock on it was granted.
        assert [event.pk for event in claimed] == ids
        assert raised(run_together(lambda: _processed_alone(ids[1]))) == []
        assert DomainEventReceipt.objects.filter(event_id=ids[1], consumer="automations").exists()
        return recheck(claimed)

    monkeypatch.setattr(opening, "_unconsumed_after_lock", another_batch_commits_first)

    # when a batch claims all four (its claim's snapshot predating the other batch's commit)
    with caplog.at_level("WARNING", logger="apps.automations.engine.opening"):
        processed = _process(ids[0])

    # then it processes the other three in its set-based lane (no unique-key failure, nothing redone one by
    # one) and every effect happened once
    assert "redone one by one" not in caplog.text
    assert sum(sql.startswith("SAVEPOINT") for sql in processed) == 1
    assert WorkflowRun.objects.filter(status="succeeded").count() == 4
    assert ActionEffect.objects.count() == 8
    assert CustomerTag.objects.filter(tag__name="Buyer").count() == 4
    assert DomainEventReceipt.objects.filter(consumer="automations").count() == 4


def _processed_alone(event_id: int) -> None:
    """The event's runs, effects and receipt committed by the per-event path (it takes no lock on the outbox row)."""
    with transaction.atomic():
        engine.domain_event_process(event_id=event_id)
