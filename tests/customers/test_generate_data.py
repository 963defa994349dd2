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


def _schema(connection):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text LIKE 'customers_%%' UNION ALL "
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'customers_%%' ORDER BY 1, 2, 3"
        )
        return cursor.fetchall()


def test_generate_data_on_postgresql_restores_every_index_and_foreign_key_and_writes_exact_summaries():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the drop-and-recreate load is PostgreSQL's")
    before = _schema(connection)
    out = StringIO()
    call_command("generate_data", customers=200, orders=1500, seed=11, days=60, batch=400, stdout=out)
    assert _schema(connection) == before
    # Every customer's figures, written with the row, equal the aggregate of its orders.
    not_cancelled = ~Q(orders__status=OrderStatus.CANCELLED)
    rows = Customer.objects.annotate(
        count=Count("orders", filter=not_cancelled),
        first=Min("orders__placed_at", filter=not_cancelled),
        last=Max("orders__placed_at", filter=not_cancelled),
    )
    for customer in rows:
        assert (customer.orders_count, customer.first_order_at, customer.last_order_at) == (
            customer.count,
            customer.first,
            customer.last,
        )
        summary = (customer.orders_count, customer.total_spent, customer.refunded_total)
        customer_summary_recompute(customer=customer)
        assert summary == (customer.orders_count, customer.total_spent, customer.refunded_total)
    for step in (
        "indexes and foreign keys dropped",
        "orders: 1500 rows",
        "indexes re-created",
        "foreign keys re-created",
    ):
        assert step in out.getvalue()
