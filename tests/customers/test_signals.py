"""Each domain signal fires exactly once, after commit, with the outbox row and the right objects; never on rollback."""

from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import transaction
from django.dispatch import Signal

from apps.customers import services, signals
from apps.customers.models import DomainEvent
from apps.customers.services import LineInput
from apps.tagging import signals as tagging_signals
from apps.tagging.services import tags_add
from tests.factories import CustomerFactory, ProductFactory, StoreFactory, make_order

pytestmark = pytest.mark.django_db


@contextmanager
def receiving(signal: Signal):
    calls: list[dict] = []

    def receiver(sender, **kwargs):
        calls.append({"sender": sender, **kwargs})

    signal.connect(receiver, weak=False)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)


def test_customer_registered_fires_once_after_commit(django_capture_on_commit_callbacks):
    with receiving(signals.customer_registered) as calls:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            customer = services.customer_create(external_id="c-1", email="a@example.com", cause="api")
        assert calls == []  # not before commit
        for callback in callbacks:
            callback()

    assert len(calls) == 1
    event = calls[0]["event"]
    assert (event.name, event.customer, event.payload, event.cause) == (
        "customer.registered",
        customer,
        {"customer_id": customer.pk},
        "api",
    )
    assert calls[0]["customer"] == customer


def test_no_signal_and_no_outbox_row_on_rollback(django_capture_on_commit_callbacks):
    with (
        receiving(signals.customer_registered) as calls,
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.customer_create(external_id="c-1")
        raise RuntimeError("boom")

    assert calls == []
    assert DomainEvent.objects.count() == 0


def test_activation_and_unsubscribe_fire_once_even_when_repeated(django_capture_on_commit_callbacks):
    customer = CustomerFactory(state="invited")
    with (
        receiving(signals.customer_activated) as activated,
        receiving(signals.customer_unsubscribed) as unsubscribed,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.customer_activate(customer=customer)
        services.customer_activate(customer=customer)
        services.customer_unsubscribe(customer=customer)
        services.customer_unsubscribe(customer=customer)

    assert [call["customer"].pk for call in activated] == [customer.pk]
    assert [call["event"].name for call in unsubscribed] == ["customer.unsubscribed"]


def test_order_created_and_product_purchased_per_distinct_product(django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    teddy, mug = ProductFactory(), ProductFactory()
    lines = [
        LineInput(title="Teddy", quantity=1, unit_price=Decimal("10"), product=teddy),
        LineInput(title="Teddy again", quantity=2, unit_price=Decimal("10"), product=teddy),
        LineInput(title="Mug", quantity=1, unit_price=Decimal("5"), product=mug),
        LineInput(title="Wrap", quantity=1, unit_price=Decimal("1")),
    ]
    with (
        receiving(signals.order_created) as created,
        receiving(signals.product_purchased) as purchased,
        django_capture_on_commit_callbacks(execute=True),
    ):
        order, _ = services.order_create(customer=customer, currency="EUR", lines=lines, external_id="o-1")
        services.order_create(customer=customer, currency="EUR", lines=lines, external_id="o-1")  # re-sent

    assert [(call["order"], call["event"].payload) for call in created] == [(order, {"order_id": order.pk})]
    assert [call["product"] for call in purchased] == [teddy, mug]
    assert purchased[0]["line"].title == "Teddy"
    assert purchased[0]["event"].payload == {
        "order_id": order.pk,
        "line_id": purchased[0]["line"].pk,
        "product_id": teddy.pk,
    }


def test_order_cancelled_and_refunded(django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    refunded_order = make_order(customer, total="50.00")
    cancelled_order = make_order(customer, total="20.00")
    with (
        receiving(signals.order_refunded) as refunded,
        receiving(signals.order_cancelled) as cancelled,
        django_capture_on_commit_callbacks(execute=True),
    ):
        refund, _ = services.refund_create(order=refunded_order, amount="12.50", external_id="rf-1")
        services.refund_create(order=refunded_order, amount="12.50", external_id="rf-1")
        services.order_cancel(order=cancelled_order)
        services.order_cancel(order=cancelled_order)

    assert len(refunded) == 1
    assert refunded[0]["refund"] == refund
    assert refunded[0]["event"].payload == {"order_id": refunded_order.pk, "refund_id": refund.pk, "amount": "12.50"}
    assert [call["order"].pk for call in cancelled] == [cancelled_order.pk]


def test_draft_cart_and_custom_event_signals(django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    lines = [{"title": "Mug", "quantity": 1, "unit_price": "5.00"}]
    with (
        receiving(signals.draft_order_created) as drafts,
        receiving(signals.cart_abandoned) as carts,
        receiving(signals.custom_event_received) as events,
        django_capture_on_commit_callbacks(execute=True),
    ):
        draft, _ = services.draft_order_create(customer=customer, currency="EUR", lines=lines)
        services.cart_upsert(customer=customer, currency="EUR", lines=lines, external_id="k")  # not abandoned
        cart, _ = services.cart_upsert(
            customer=customer, currency="EUR", lines=lines, external_id="k", abandoned_at=draft.created_at
        )
        services.cart_upsert(  # same content again: not announced twice
            customer=customer, currency="EUR", lines=lines, external_id="k", abandoned_at=draft.created_at
        )
        custom, _ = services.custom_event_record(customer=customer, name=" review_posted ", properties={"r": 5})

    assert [call["draft_order"] for call in drafts] == [draft]
    assert [(call["cart"], call["event"].payload) for call in carts] == [(cart, {"cart_id": cart.pk})]
    assert [(call["custom_event"], call["event"].payload) for call in events] == [
        (custom, {"custom_event_id": custom.pk, "event_name": "review_posted"})
    ]


def test_location_reported_once_per_store_in_range(django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    store = StoreFactory(latitude=52.52, longitude=13.405, radius_m=100)
    StoreFactory(latitude=52.60, longitude=13.405, radius_m=100)
    with receiving(signals.customer_location_reported) as calls, django_capture_on_commit_callbacks(execute=True):
        services.location_report(customer=customer, latitude=52.5201, longitude=13.405)

    assert len(calls) == 1
    assert (calls[0]["store"], calls[0]["latitude"], calls[0]["longitude"]) == (store, 52.5201, 13.405)
    assert calls[0]["event"].payload["distance_m"] == 11.1


def test_customer_tag_added_fires_once_per_new_tag(django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    with receiving(tagging_signals.customer_tag_added) as calls, django_capture_on_commit_callbacks(execute=True):
        tags_add(customer=customer, names=["VIP"], source="workflow", source_ref="workflow_run:4")
        tags_add(customer=customer, names=["vip", "Parent"], source="api")

    assert sorted(call["tag"].name for call in calls) == ["Parent", "VIP"]
    vip = next(call for call in calls if call["tag"].name == "VIP")
    assert vip["event"].payload == {
        "customer_id": customer.pk,
        "tag": "VIP",
        "source": "workflow",
        "source_ref": "workflow_run:4",
    }
    assert vip["event"].cause == "workflow_run:4"


def test_every_trigger_name_matches_its_outbox_rows():
    assert set(signals.TRIGGER_NAMES.values()) == {
        "customer.registered",
        "customer.activated",
        "customer.unsubscribed",
        "customer.consent_confirmed",
        "customer.updated",
        "order.created",
        "order.cancelled",
        "order.refunded",
        "order.updated",
        "product.purchased",
        "draft_order.created",
        "cart.abandoned",
        "event.custom",
        "customer.near_store",
    }
