"""
The outbox's coalescing (issue 12): on PostgreSQL with batches, a write sends no task per event and consumer but
each consumer's drain task (the engine's, loyalty's), and only when no drain of that consumer is queued and not
yet started. The drain clears that mark before its first claim, so an event committed while it works sends a
drain of its own and is processed without the outbox sweep. The ORM broker's queue is read as a worker would.
"""

import os
import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.automations.models import ActionEffect, WorkflowRun
from apps.customers import outbox
from apps.customers.models import DomainEvent, DomainEventReceipt, OutboxDrain
from apps.loyalty.models import PointLot
from loyalty_site.lib import tasks as task_queue
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="reads the ORM broker's queue"),
]

ENGINE_DRAIN = "apps.automations.tasks.events_drain"
LOYALTY_DRAIN = "apps.loyalty.tasks.domain_events_drain"
ENGINE_TASK = "apps.automations.tasks.process_domain_event"


def _queued() -> list[tuple[str, tuple]]:
    """The tasks in the ORM broker's queue, oldest first: (function, arguments)."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    return [
        (task["func"], tuple(task["args"]))
        for task in (SignedPackage.loads(row.payload) for row in OrmQ.objects.order_by("pk"))
    ]


def _work() -> list[str]:
    """A worker: pull and run the queued tasks (and those they queue) until the queue is empty; what ran."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    ran = []
    while (row := OrmQ.objects.order_by("pk").first()) is not None:
        task = SignedPackage.loads(row.payload)
        row.delete()
        import_string(task["func"])(*task["args"])
        ran.append(task["func"])
    return ran


def _buyer() -> None:
    program_make()
    active_workflow(
        "buyer",
        "order.created",
        [add_tags("Buyer"), {"id": "p", "action": "loyalty.award_points", "params": {"points": 10, "reason": "Bench"}}],
    )


def _orders(count: int) -> None:
    for customer in CustomerFactory.create_batch(count):
        make_order(customer, total="25.00")


def _all_done(orders: int) -> None:
    assert not DomainEvent.objects.filter(status="pending").exists()
    assert WorkflowRun.objects.filter(status="succeeded").count() == orders
    assert ActionEffect.objects.count() == 2 * orders
    assert DomainEventReceipt.objects.filter(consumer="loyalty").count() == orders
    assert PointLot.objects.filter(order__isnull=False).count() == orders  # loyalty's earning, once per order


def test_writes_send_one_drain_per_consumer_while_one_is_queued(settings):
    # given the benchmark's "order -> tag + points" workflow and a loyalty program
    _buyer()

    # when 30 orders commit at once, then 5 more one commit each, before any worker starts
    with transaction.atomic():
        _orders(30)
    assert sorted(_queued()) == [(ENGINE_DRAIN, ()), (LOYALTY_DRAIN, ())]
    _orders(5)

    # then the queue still holds one drain per consumer (was 2 tasks per order: 70), each marked queued
    assert sorted(_queued()) == [(ENGINE_DRAIN, ()), (LOYALTY_DRAIN, ())]
    assert set(OutboxDrain.objects.values_list("consumer", flat=True)) == {"automations", "loyalty"}

    # and two drains process all 35 orders, each effect once, clearing their marks
    assert sorted(_work()) == [ENGINE_DRAIN, LOYALTY_DRAIN]
    _all_done(35)
    assert not OutboxDrain.objects.exists()

    # a write after the drains started sends a drain again
    _orders(1)
    assert sorted(_queued()) == [(ENGINE_DRAIN, ()), (LOYALTY_DRAIN, ())]


def test_a_drain_takes_batch_after_batch_and_asks_once_for_a_helper(settings):
    # given 12 orders and batches of 5
    settings.AUTOMATIONS_EVENT_BATCH = 5
    settings.LOYALTY_EVENT_BATCH = 5
    _buyer()
    with transaction.atomic():
        _orders(12)

    # when the engine's drain runs
    first = _queued()
    assert sorted(first) == [(ENGINE_DRAIN, ()), (LOYALTY_DRAIN, ())]
    from django_q.models import OrmQ

    OrmQ.objects.all().delete()
    taken = import_string(ENGINE_DRAIN)()

    # then it took all 12 in 3 batches (5, 5, 2) and, after its full batches, queued ONE more drain for a free
    # worker (the second request found it queued); loyalty's drain, run after it, does the same
    assert taken == 12
    assert WorkflowRun.objects.filter(status="succeeded").count() == 12
    assert _queued() == [(ENGINE_DRAIN, ())]
    import_string(LOYALTY_DRAIN)()
    assert sorted(_queued()) == [(ENGINE_DRAIN, ()), (LOYALTY_DRAIN, ())]
    # the helpers find nothing left
    assert sorted(_work()) == [ENGINE_DRAIN, LOYALTY_DRAIN]
    _all_done(12)


def test_an_order_committed_while_a_drain_works_is_processed_without_the_sweep(settings, monkeypatch):
    # given 3 orders and their drains queued
    from apps.automations.engine import opening

    _buyer()
    _orders(3)
    assert sorted(_queued()) == [(ENGINE_DRAIN, ()), (LOYALTY_DRAIN, ())]
    process = opening._claimed_process
    arrived: list[int] = []

    def meanwhile(claimed, workflows):
        # While the engine's drain holds its first batch (its mark cleared, its claim made), another request
        # commits an order on another connection.
        if not arrived:
            writer = threading.Thread(target=lambda: (_orders(1), arrived.append(1)))
            writer.start()
            writer.join()
        return process(claimed, workflows)

    monkeypatch.setattr(opening, "_claimed_process", meanwhile)

    # when the worker runs the queue (never the sweep)
    ran = _work()

    # then the new order's write found no drain queued and sent one, which processed it: four orders done
    assert arrived == [1]
    assert ran.count(ENGINE_DRAIN) == 2
    _all_done(4)


def test_a_stale_mark_is_taken_over_and_the_sweep_redrives_one_event_not_a_drain(settings):
    # given an engine drain marked queued long ago (lost with its broker) and nothing in the queue
    _buyer()
    OutboxDrain.objects.create(consumer="automations", queued_at=timezone.now() - 2 * outbox.DRAIN_STALE)

    # when an order commits, the next writer takes the mark over and sends a drain
    _orders(1)
    assert sorted(_queued()) == [(ENGINE_DRAIN, ()), (LOYALTY_DRAIN, ())]
    assert OutboxDrain.objects.get(consumer="automations").queued_at > timezone.now() - outbox.DRAIN_STALE

    # and the sweep re-drives an event a batch failed on with the event's own task (a drain would leave it)
    from django_q.models import OrmQ

    OrmQ.objects.all().delete()
    event = DomainEvent.objects.get(name="order.created")
    DomainEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - timedelta(minutes=5), batch_claims=1, batch_claimed_at=None
    )
    assert outbox.outbox_sweep() == 1
    assert sorted(_queued()) == [(ENGINE_TASK, (event.pk,)), ("apps.loyalty.tasks.domain_event_consume", (event.pk,))]
    _work()
    _all_done(1)


def test_one_task_per_event_with_batches_off(settings):
    # given the engine's batches off (AUTOMATIONS_EVENT_BATCH=1): no drain for it
    settings.AUTOMATIONS_EVENT_BATCH = 1
    _buyer()

    with transaction.atomic():
        _orders(3)

    ids = list(DomainEvent.objects.filter(name="order.created").order_by("pk").values_list("pk", flat=True))
    assert sorted(_queued()) == [(ENGINE_TASK, (pk,)) for pk in ids] + [(LOYALTY_DRAIN, ())]
    _work()
    _all_done(3)


def test_tasks_sync_runs_each_event_inline_as_before(settings, django_capture_on_commit_callbacks):
    settings.TASKS_SYNC = True
    _buyer()

    with django_capture_on_commit_callbacks(execute=True):
        _orders(2)

    assert _queued() == []
    assert not OutboxDrain.objects.exists()
    _all_done(2)


def test_a_drain_request_sends_nothing_while_a_drain_is_queued(settings):
    # the outbox's mark alone: set by the first request, read by the next, cleared by the drain
    assert outbox.outbox_drain_queued("automations") is False
    assert outbox.outbox_drain_request("automations") is True
    assert outbox.outbox_drain_queued("automations") is True
    assert outbox.outbox_drain_request("automations") is False
    outbox.outbox_drain_started("automations")
    assert outbox.outbox_drain_queued("automations") is False
    assert outbox.outbox_drain_request("automations") is True
    # a drain's own request for a helper goes through the same mark
    task_queue.drain_request(ENGINE_TASK)
    assert _queued() == []


def _writer(count: int) -> None:
    """Commit `count` orders on another connection (another request), as a concurrent writer."""
    from django.db import connection

    def write() -> None:
        try:
            _orders(count)
        finally:
            connection.close()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()


def _engine_drain_alone() -> int:
    """Run the engine's queued drain as a worker would, ahead of the rest of the queue (loyalty's drain stays)."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    rows = [row for row in OrmQ.objects.order_by("pk") if SignedPackage.loads(row.payload)["func"] == ENGINE_DRAIN]
    assert len(rows) == 1
    rows[0].delete()
    return import_string(ENGINE_DRAIN)()


def test_writes_while_a_drain_lingers_send_no_drain_and_its_next_claim_takes_them(settings, monkeypatch):
    # given 2 orders, and the engine's drain about to run
    _buyer()
    _orders(2)
    seen: list[tuple] = []

    def linger(seconds):
        # while the drain lingers: its mark is held, and 3 orders commit on another connection
        seen.append(tuple(OutboxDrain.objects.filter(consumer="automations").values_list("holder", flat=True)))
        if len(seen) == 1:
            _writer(3)
            seen.append(tuple(func for func, _ in _queued()))

    monkeypatch.setattr(task_queue.time, "sleep", linger)

    # when the drain runs
    taken = _engine_drain_alone()

    # then the writes found the lingering drain's mark and sent no engine drain (loyalty's is still queued); the
    # drain's next claim took the 3 orders, and it stopped after an empty claim with the mark cleared
    assert seen == [("lingering",), (LOYALTY_DRAIN,), ("lingering",)]
    assert taken == 5
    assert WorkflowRun.objects.filter(status="succeeded").count() == 5
    assert not OutboxDrain.objects.filter(consumer="automations").exists()
    assert _queued() == [(LOYALTY_DRAIN, ())]
    _work()
    _all_done(5)


def test_a_write_committed_before_the_drain_lingers_but_checking_after_is_taken_by_the_next_claim(
    settings, monkeypatch
):
    # the race at the mark on two connections: an order commits while the drain's claim comes back short; its
    # check of the mark (after its commit) comes only after the lingering drain took the mark
    _buyer()
    _orders(1)
    committed, lingering = threading.Event(), threading.Event()
    real_queued, real_linger = outbox.outbox_drain_queued, outbox.outbox_drain_linger
    writer_found: list[bool] = []

    def queued(consumer, **kwargs):
        if consumer == "automations" and threading.current_thread() is not threading.main_thread():
            committed.set()
            assert lingering.wait(30)
            writer_found.append(real_queued(consumer, **kwargs))
            return writer_found[-1]
        return real_queued(consumer, **kwargs)

    def linger(consumer, **kwargs):
        if consumer == "automations" and not writer_found:
            writer = threading.Thread(target=_writer, args=(1,))
            writer.start()
            assert committed.wait(30)  # the order is committed, its mark check waits
            held = real_linger(consumer, **kwargs)
            lingering.set()
            writer.join()
            return held
        return real_linger(consumer, **kwargs)

    monkeypatch.setattr(outbox, "outbox_drain_queued", queued)
    monkeypatch.setattr(outbox, "outbox_drain_linger", linger)
    monkeypatch.setattr(task_queue.time, "sleep", lambda seconds: None)

    taken = _engine_drain_alone()

    # then the writer found the mark (sent no engine drain) and the drain's claim after lingering took its order
    assert writer_found == [True]
    assert taken == 2
    assert ENGINE_DRAIN not in [func for func, _ in _queued()]
    _work()
    _all_done(2)


def test_a_write_after_the_drains_last_empty_claim_sends_a_drain(settings, monkeypatch):
    # given 1 order and the engine's drain; an order commits right after the drain's last (empty) claim
    from apps.automations.engine import opening

    _buyer()
    _orders(1)
    monkeypatch.setattr(task_queue.time, "sleep", lambda seconds: None)
    fresh = opening._fresh_process
    claims: list[int] = []

    def claim_then_write(**kwargs):
        taken = fresh(**kwargs)
        claims.append(taken)
        if taken == 0:
            _writer(1)
        return taken

    monkeypatch.setattr(opening, "_fresh_process", claim_then_write)

    # when the drain runs
    assert _engine_drain_alone() == 1

    # then the late order found the mark cleared (the drain had cleared it before that claim) and queued a drain,
    # which processes it
    assert claims == [1, 0]
    assert OutboxDrain.objects.get(consumer="automations").holder == "queued"
    assert ENGINE_DRAIN in [func for func, _ in _queued()]
    monkeypatch.setattr(opening, "_fresh_process", fresh)
    _work()
    _all_done(2)


def test_a_drain_claims_the_backlog_once_when_there_is_none_and_batch_after_batch_when_there_is(settings, monkeypatch):
    from apps.automations.engine import opening

    settings.AUTOMATIONS_EVENT_BATCH = 5
    _buyer()
    monkeypatch.setattr(task_queue.time, "sleep", lambda seconds: None)
    backlog = opening._backlog_process
    claims: list[int] = []

    def counted(**kwargs):
        claims.append(backlog(**kwargs))
        return claims[-1]

    monkeypatch.setattr(opening, "_backlog_process", counted)

    # 2 fresh orders: one backlog claim (empty) for the drain's claims of 2, then 0
    _orders(2)
    assert _engine_drain_alone() == 2
    assert claims == [0]

    # 7 orders older than the grace (their drain lost, say): the backlog in batches of 5 and 2
    claims.clear()
    with transaction.atomic():
        _orders(7)
    DomainEvent.objects.filter(status="pending").update(created_at=timezone.now() - 2 * outbox.OUTBOX_GRACE)
    assert _engine_drain_alone() == 7
    assert claims == [5, 2]
    _work()
    _all_done(9)


def test_a_lingering_mark_goes_stale_sooner_than_a_queued_one(settings):
    now = timezone.now()
    # a lingering drain's mark 1 s old is held; 3 s old, its drain is presumed lost and the next writer takes it
    OutboxDrain.objects.create(consumer="automations", queued_at=now - timedelta(seconds=1), holder="lingering")
    assert outbox.outbox_drain_queued("automations", now=now) is True
    assert outbox.outbox_drain_request("automations", now=now) is False
    later = now + timedelta(seconds=2)
    assert outbox.outbox_drain_queued("automations", now=later) is False
    assert outbox.outbox_drain_request("automations", now=later) is True
    assert OutboxDrain.objects.get(consumer="automations").holder == "queued"
    # a queued drain's mark 3 s old still holds (DRAIN_STALE): a drain may wait that long for a worker
    assert outbox.outbox_drain_queued("automations", now=later + timedelta(seconds=3)) is True
    assert outbox.outbox_drain_linger("automations", now=later + timedelta(seconds=3)) is False
    assert outbox.outbox_drain_linger("automations", now=later + outbox.DRAIN_STALE + timedelta(seconds=1)) is True
    assert OutboxDrain.objects.get(consumer="automations").holder == "lingering"
