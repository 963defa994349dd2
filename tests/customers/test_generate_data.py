from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count, Max, Min, Q

from apps.customers.choices import OrderStatus
from apps.customers.models import Customer, DomainEvent, Order, OrderLine, Product, Refund
from apps.customers.services import customer_summary_recompute

pytestmark = pytest.mark.django_db


def test_generate_data_creates_the_requested_rows_with_consistent_summary_figures():
    out = StringIO()

    call_command("generate_data", customers=300, orders=2000, seed=7, days=90, batch=500, stdout=out)

    assert Customer.objects.count() == 300
    assert Order.objects.count() == 2000
    assert Product.objects.count() == 30
    lines = OrderLine.objects.count()
    assert 2000 <= lines <= 6000
    # Each order's total is the sum of its lines; refunds never exceed the order total.
    line_sums: dict[int, Decimal] = {}
    for order_id, total in OrderLine.objects.values_list("order_id", "total"):
        line_sums[order_id] = line_sums.get(order_id, Decimal("0")) + total
    assert dict(Order.objects.values_list("pk", "total")) == line_sums
    assert Order.objects.filter(refunded_total__gt=0).count() == Refund.objects.count()
    assert Order.objects.filter(status=OrderStatus.CANCELLED, refunded_total__gt=0).count() == 0
    # Summary figures equal what the services' repair tool computes, for every customer.
    expected = {
        row["customer_id"]: row
        for row in Order.objects.values("customer_id").annotate(
            count=Count("pk", filter=~Q(status=OrderStatus.CANCELLED)),
            first=Min("placed_at", filter=~Q(status=OrderStatus.CANCELLED)),
            last=Max("placed_at", filter=~Q(status=OrderStatus.CANCELLED)),
        )
    }
    for customer in Customer.objects.filter(pk__in=list(expected)[:40]):
        before = (customer.orders_count, customer.total_spent, customer.refunded_total, customer.last_order_at)
        customer_summary_recompute(customer=customer)
        assert before == (customer.orders_count, customer.total_spent, customer.refunded_total, customer.last_order_at)
        assert customer.orders_count == expected[customer.pk]["count"]
    assert Customer.objects.filter(orders__isnull=True, total_spent__gt=0).count() == 0
    # Historical data: no trigger events.
    assert DomainEvent.objects.count() == 0
    assert "orders: 2000 rows" in out.getvalue()
    assert "summary figures:" in out.getvalue()


def _snapshot():
    customers = list(Customer.objects.order_by("pk").values_list("email", "country", "orders_count", "total_spent"))
    orders = list(Order.objects.order_by("pk").values_list("external_id", "currency", "total", "status", "channel"))
    return customers, orders


def test_generate_data_is_deterministic_for_a_seed_and_refuses_to_repeat_it():
    with transaction.atomic():
        call_command("generate_data", customers=20, orders=50, seed=3, stdout=StringIO())
        first = _snapshot()
        transaction.set_rollback(True)
    assert Customer.objects.count() == 0

    call_command("generate_data", customers=20, orders=50, seed=3, stdout=StringIO())
    # Same seed, same data (timestamps aside, which move with the clock).
    assert _snapshot() == first
    assert len(first[0]) == 20

    with pytest.raises(CommandError):
        call_command("generate_data", customers=20, orders=50, seed=3, stdout=StringIO())
    assert _snapshot() == first


def test_generate_data_rejects_nonsense_sizes():
    with pytest.raises(CommandError):
        call_command("generate_data", customers=0, orders=10, stdout=StringIO())
    assert Customer.objects.count() == 0
