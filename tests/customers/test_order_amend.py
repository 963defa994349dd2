"""order_amend: an order edited after it was placed (a shop's order edit), idempotent, bounded by refunds."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.customers import services
from apps.customers.models import Customer, DomainEvent, Order
from apps.customers.services import LineInput
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _order(customer, *lines):
    order, _ = services.order_create(
        customer=customer,
        currency="USD",
        lines=[
            LineInput(title=title, quantity=quantity, unit_price=Decimal(price)) for title, quantity, price in lines
        ],
    )
    return order


def test_amend_replaces_lines_and_amounts_moves_the_summary_and_announces_once():
    customer = CustomerFactory()
    order = _order(customer, ("Mug", 2, "10.00"), ("Pen", 1, "5.00"))
    amended, changed = services.order_amend(
        order=order, lines=[LineInput(title="Mug", quantity=1, unit_price=Decimal("10.00"))], shipping_total="4.00"
    )
    again, changed_again = services.order_amend(
        order=order, lines=[LineInput(title="Mug", quantity=1, unit_price=Decimal("10.00"))], shipping_total="4.00"
    )
    customer.refresh_from_db()
    assert (changed, changed_again) == (True, False)
    assert (amended.subtotal, amended.shipping_total, amended.total, amended.total_shop) == (
        Decimal("10.00"),
        Decimal("4.00"),
        Decimal("14.00"),
        Decimal("14.00"),
    )
    assert list(amended.lines.values_list("title", "quantity")) == [("Mug", 1)]
    assert (customer.total_spent, customer.orders_count) == (Decimal("14.00"), 1)
    event = DomainEvent.objects.get(name="order.updated")
    assert event.payload["before"]["total"] == "25.00" and event.payload["after"]["total"] == "14.00"
    assert again.edited_at == amended.edited_at


def test_amend_refuses_a_total_below_the_refunds_and_leaves_cancelled_orders_alone():
    customer = CustomerFactory()
    order = _order(customer, ("Lamp", 1, "50.00"))
    services.refund_create(order=order, amount="30.00")
    with pytest.raises(ValidationError) as refused:
        services.order_amend(order=order, lines=[LineInput(title="Lamp", quantity=1, unit_price=Decimal("20.00"))])
    assert list(refused.value.message_dict) == ["total"]
    assert Order.objects.get().total == Decimal("50.00")
    assert Customer.objects.get().total_spent == Decimal("20.00")

    other = _order(customer, ("Chair", 1, "80.00"))
    services.order_cancel(order=other)
    _, changed = services.order_amend(
        order=other, lines=[LineInput(title="Chair", quantity=2, unit_price=Decimal("80"))]
    )
    assert changed is False
    assert Order.objects.get(pk=other.pk).total == Decimal("80.00")
    assert DomainEvent.objects.filter(name="order.updated").count() == 0
