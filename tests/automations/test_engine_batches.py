"""
The engine's outbox task claims and processes pending events in batches on PostgreSQL (issue 12): one
transaction and one commit per batch, disjoint batches for concurrent workers (SKIP LOCKED), every effect
exactly once; with a non-transactional action active it falls back to one event a task.
"""

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from apps.automations import tasks as engine_tasks
from apps.automations.models import ActionEffect, WorkflowRun
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent, DomainEventReceipt
from apps.tagging.models import CustomerTag
from loyalty_site.lib import tasks
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory

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
    # the active workflows (one snapshot), BEGIN, the claim (events with their customers), their custom events,
    # the set-based lane in one savepoint (the runs, the tag's look-up, the tags, the audit, the tag-added
    # events, the effect ledger, the step rows, the runs closed), the receipts, the settle (2), COMMIT; the first
    # batch also creates the tag (2 more). Was 5 + 31 per event (10 of them savepoints), then 9 + 22 per event.
    assert (len(first), len(second)) == (PER_BATCH + 2, PER_BATCH), "\n".join(second)
    # a task finding nothing left: freshness, workflows, BEGIN, the claim, COMMIT; nothing written
    assert len(_process(ids[0])) == 5


PER_BATCH = 19


def test_concurrent_tasks_take_disjoint_batches_and_every_effect_happens_once(no_queue, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 5
    _tagging()
    ids = _events(40)
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    processed: list[int] = []

    def worker(share: list[int]) -> None:
        try:
            start.wait()
            for event_id in share:
                processed.append(engine_tasks.process_domain_event(event_id) or 0)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
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


def test_an_event_older_than_the_outbox_grace_is_processed_alone(no_queue, settings):
    """A sweep's re-drive: its batch may have died with its worker, so it must not take others down with it."""
    from datetime import timedelta

    from django.utils import timezone

    settings.AUTOMATIONS_EVENT_BATCH = 10
    _tagging()
    ids = _events(3)
    DomainEvent.objects.filter(pk=ids[0]).update(created_at=timezone.now() - timedelta(minutes=5))

    statements = _process(ids[0])

    assert not [s for s in statements if "SKIP LOCKED" in s]
    consumed = list(DomainEventReceipt.objects.filter(consumer="automations").values_list("event_id", flat=True))
    assert consumed == [ids[0]]
    # and a fresh event's batch leaves the old one out
    DomainEvent.objects.filter(pk=ids[0]).update(status="pending")
    DomainEventReceipt.objects.filter(event_id=ids[0]).delete()
    _process(ids[1])
    assert set(DomainEvent.objects.filter(status="pending").values_list("pk", flat=True)) == {ids[0]}
