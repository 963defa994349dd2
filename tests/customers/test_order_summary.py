from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.customers import services
from apps.customers.models import Customer, DomainEvent, Order
from tests.factories import CustomerFactory, ProductFactory, make_order

pytestmark = pytest.mark.django_db


def test_order_create_updates_summary_figures_in_the_same_transaction():
    customer = CustomerFactory()
    make_order(customer, total="120.00", placed_at=datetime(2026, 3, 1, tzinfo=UTC))
    make_order(customer, total="30.50", placed_at=datetime(2026, 1, 1, tzinfo=UTC))

    customer.refresh_from_db()
    assert customer.orders_count == 2
    assert customer.total_spent == Decimal("150.50")
    assert customer.first_order_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert customer.last_order_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_refund_and_cancel_adjust_the_net_total_spent():
    customer = CustomerFactory()
    first = make_order(customer, total="100.00", placed_at=datetime(2026, 1, 1, tzinfo=UTC))
    make_order(customer, total="50.00", placed_at=datetime(2026, 2, 1, tzinfo=UTC))

    services.refund_create(order=first, amount="40.00", reason="damaged")
    customer.refresh_from_db()
    assert (customer.total_spent, customer.refunded_total) == (Decimal("110.00"), Decimal("40.00"))

    services.order_cancel(order=first)
    customer.refresh_from_db()
    assert customer.orders_count == 1
    assert customer.total_spent == Decimal("50.00")
    assert customer.first_order_at == datetime(2026, 2, 1, tzinfo=UTC)


def test_refund_above_the_refundable_amount_is_refused_and_writes_nothing():
    customer = CustomerFactory()
    order = make_order(customer, total="20.00")
    events_before = DomainEvent.objects.count()

    with pytest.raises(ValidationError) as error:
        services.refund_create(order=order, amount="20.01")

    assert "amount" in error.value.message_dict
    order.refresh_from_db()
    assert order.refunded_total == Decimal("0.00")
    assert DomainEvent.objects.count() == events_before
    assert Customer.objects.get(pk=customer.pk).total_spent == Decimal("20.00")


def test_resending_an_order_external_id_returns_the_stored_order():
    customer = CustomerFactory()
    product = ProductFactory()
    line = services.LineInput(title="Shirt", quantity=2, unit_price=Decimal("10"), product=product)
    order, created = services.order_create(customer=customer, currency="usd", lines=[line], external_id="A-1")
    again, created_again = services.order_create(customer=customer, currency="usd", lines=[line], external_id="A-1")

    assert (created, created_again) == (True, False)
    assert again.pk == order.pk
    assert Order.objects.count() == 1
    customer.refresh_from_db()
    assert customer.orders_count == 1
    assert customer.total_spent == Decimal("20.00")
