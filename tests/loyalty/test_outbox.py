"""Loyalty earning is an outbox consumer: a lost enqueue is re-driven by the sweep, and points move exactly once."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.customers import outbox
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent, DomainEventReceipt
from apps.loyalty import services
from apps.loyalty.models import Balance, EarningRule, LedgerEntry, PointLot
from apps.loyalty.tasks import domain_event_consume, order_earn_task
from loyalty_site.lib import tasks as task_queue
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _broker_down(func_path, *args, **kwargs):
    raise ConnectionError("broker unreachable")


def _balance(customer) -> int:
    return Balance.objects.get(pk=services.membership_for(customer).pk).active


@pytest.fixture
def lost_enqueue(request, monkeypatch, settings):
    """The process commits the write, then the enqueue is lost: the broker raises, or nothing is sent."""
    if request.param == "raises":
        # Only a broker outside the database (Redis) can be unreachable after the write committed: the
        # ORM broker's queue row is part of the write's own transaction.
        settings.Q_CLUSTER = {**{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}, "redis": "redis://x"}
        monkeypatch.setattr(task_queue, "task_send", _broker_down)
    else:
        monkeypatch.setattr(task_queue, "enqueue_on_commit", lambda *args, **kwargs: None)
    return monkeypatch


@pytest.mark.parametrize("lost_enqueue", ["raises", "nothing"], indirect=True)
def test_a_lost_enqueue_is_earned_by_the_sweep_exactly_once(lost_enqueue, settings, django_capture_on_commit_callbacks):
    # given an order committed while its loyalty task could not be enqueued
    program_make()
    customer = CustomerFactory()
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        order = make_order(customer, total="80.00")
    event = DomainEvent.objects.get(name="order.created")
    assert PointLot.objects.count() == 0
    assert event.status == "pending"
    # nobody listens: no workflow, no fraud rule, no promotion to link
    assert sorted(DomainEventReceipt.objects.values_list("consumer", flat=True)) == [
        "automations",
        "fraud",
        "promotions",
    ]

    # when the enqueue works again and the periodic sweep runs (twice), with the worker running its tasks
    lost_enqueue.undo()
    settings.TASKS_SYNC = True
    with time_machine.travel(NOW + timedelta(seconds=30), tick=False), django_capture_on_commit_callbacks(execute=True):
        early = outbox.outbox_sweep()
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False), django_capture_on_commit_callbacks(execute=True):
        first = outbox.outbox_sweep()
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False), django_capture_on_commit_callbacks(execute=True):
        second = outbox.outbox_sweep()

    # then the points were earned once, by the first sweep after the grace minute
    assert (early, first, second) == (0, 1, 0)
    assert list(PointLot.objects.values_list("source_key", "amount")) == [(f"order:{order.pk}:base", 80)]
    assert _balance(customer) == 80
    event.refresh_from_db()
    assert event.status == "processed"
    assert sorted(DomainEventReceipt.objects.filter(event=event).values_list("consumer", flat=True)) == [
        "automations",
        "fraud",
        "loyalty",
        "promotions",
    ]


def test_a_task_delivered_again_or_re_driven_after_its_receipt_earns_nothing_more(settings):
    # given an order whose loyalty task already ran
    settings.TASKS_SYNC = True
    program_make()
    customer = CustomerFactory()
    order = make_order(customer, total="50.00")
    event = DomainEvent.objects.get(name="order.created")
    assert domain_event_consume(event.pk) == 50

    # when the same task is delivered twice more (a re-delivery, a sweep racing the first delivery)
    again = [domain_event_consume(event.pk), domain_event_consume(event.pk)]

    # then nothing more moved
    assert again == [0, 0]
    assert PointLot.objects.filter(order=order).count() == 1
    assert LedgerEntry.objects.filter(membership__customer=customer).count() == 1
    assert _balance(customer) == 50


def test_a_worker_that_died_after_earning_but_before_its_receipt_is_re_driven_without_a_second_earning(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given the points of an order earned, but the worker died before recording loyalty's receipt
    program_make()
    customer = CustomerFactory()
    monkeypatch.setattr(task_queue, "enqueue_on_commit", lambda *args, **kwargs: None)
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        order = make_order(customer, total="40.00")
    order_earn_task(order.pk)
    monkeypatch.undo()

    # when the sweep drives the event again
    settings.TASKS_SYNC = True
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False), django_capture_on_commit_callbacks(execute=True):
        assert outbox.outbox_sweep() == 1

    # then the event is processed and the points stand once
    assert _balance(customer) == 40
    assert PointLot.objects.filter(order=order).count() == 1
    assert DomainEvent.objects.get(name="order.created").status == "processed"


def test_a_lost_refund_enqueue_is_taken_back_by_the_sweep_exactly_once(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given an earned order, then a refund committed while the enqueue was lost
    settings.TASKS_SYNC = True
    program_make()
    customer = CustomerFactory()
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        order = make_order(customer, total="80.00")
    monkeypatch.setattr(task_queue, "task_send", _broker_down)
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        customer_services.refund_create(order=order, amount="20.00")
    assert _balance(customer) == 80
    monkeypatch.undo()

    # when the sweep runs twice
    swept = []
    for _ in range(2):
        with (
            time_machine.travel(NOW + timedelta(minutes=2), tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            swept.append(outbox.outbox_sweep())

    # then 20 points were taken back, once
    assert swept == [1, 0]
    assert _balance(customer) == 60
    assert DomainEvent.objects.filter(status="pending").count() == 0


def test_events_nothing_listens_to_need_no_task_and_are_processed_at_once(
    django_capture_on_commit_callbacks, monkeypatch
):
    # given no program, no earning rule and no workflow: every consumer records its receipt at once
    sent: list[str] = []
    monkeypatch.setattr(task_queue, "enqueue_on_commit", lambda func_path, *args, **kwargs: sent.append(func_path))
    program_make()
    EarningRule.objects.create(
        program=services.program_default(), name="Review", kind="fixed_event", event_name="review", points=10
    )
    customer = CustomerFactory()

    with django_capture_on_commit_callbacks(execute=True):
        customer_services.custom_event_record(customer=customer, name="newsletter_signup")  # no rule for it
        customer_services.custom_event_record(customer=customer, name="review")  # earns: loyalty's task

    assert sent == ["apps.loyalty.tasks.domain_event_consume"]
    assert dict(DomainEvent.objects.values_list("payload__event_name", "status")) == {
        "newsletter_signup": "processed",
        "review": "pending",
    }
