"""On generated data, the rollups equal plain SQL over the raw tables, and refreshes equal a rebuild."""

import random
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from apps.customers import services as customer_services
from apps.loyalty.models import Program
from apps.reports import services
from apps.reports.models import DailyFigures

from .helpers import at, customer, member, order

pytestmark = pytest.mark.django_db

RAW_SQL = {
    "sqlite": "date(o.placed_at)",
    "postgresql": "(o.placed_at AT TIME ZONE 'UTC')::date",
}


def raw_orders_by_day():
    """Orders and net revenue per day, members apart, straight from customers_order (TIME_ZONE is UTC here)."""
    day = RAW_SQL[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {day} AS day,
                   EXISTS (SELECT 1 FROM loyalty_membership m
                           WHERE m.customer_id = o.customer_id AND m.joined_at <= o.placed_at) AS member,
                   COUNT(*), SUM(o.total_shop - COALESCE(o.refunded_total_shop, 0))
            FROM customers_order o WHERE o.status <> 'cancelled'
            GROUP BY 1, 2
            """
        )
        out = {}
        for row_day, is_member, count, revenue in cursor.fetchall():
            out[(str(row_day), bool(is_member))] = (count, Decimal(str(revenue)).quantize(Decimal("0.01")))
        return out


def rolled_up():
    out = {}
    for row in DailyFigures.objects.all():
        if row.orders_members:
            out[(str(row.day), True)] = (row.orders_members, row.revenue_members)
        if row.orders_non_members:
            out[(str(row.day), False)] = (row.orders_non_members, row.revenue_non_members)
    return out


def test_generated_orders_match_raw_sql_and_incremental_equals_rebuild():
    rng = random.Random(16)
    with time_machine.travel(at("2026-03-25"), tick=False):
        program = Program.objects.create(name="Club", slug="club")
        people = [customer("2026-02-01") for _ in range(12)]
        for person in people[:6]:
            member(program, person, f"2026-03-{rng.randint(1, 15):02d}")
        orders = []
        for _ in range(120):
            day = f"2026-03-{rng.randint(1, 20):02d}"
            if rng.random() < 0.2:
                orders.append(order(rng.choice(people), "20.00", day, currency="EUR", total_shop="21.73"))
            else:
                orders.append(order(rng.choice(people), f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d}", day))
        for placed in rng.sample(orders, 15):
            customer_services.refund_create(order=placed, amount=min(placed.total, Decimal("7.50")))
        for placed in rng.sample(orders, 5):
            placed.refresh_from_db()
            if placed.status != "cancelled":
                customer_services.order_cancel(order=placed)
    with time_machine.travel(at("2026-03-25", 13), tick=False):
        services.rollups_refresh()
    assert rolled_up() == raw_orders_by_day()

    # late changes on a few days, then an incremental refresh: only those days, and the same as a rebuild
    late = rng.sample(orders, 6)
    with time_machine.travel(at("2026-03-26"), tick=False):
        for placed in late:
            placed.refresh_from_db()
            if placed.status != "cancelled" and placed.refundable_amount > 1:
                customer_services.refund_create(order=placed, amount="1.00")
    with time_machine.travel(at("2026-03-26", 13), tick=False):
        result = services.rollups_refresh()
        expected_days = {placed.placed_at.date() for placed in late if placed.status != "cancelled"}
        assert set(result.days) == expected_days
        assert rolled_up() == raw_orders_by_day()
        incremental = list(DailyFigures.objects.values(*services.FIGURE_FIELDS, "day"))
        services.rollups_rebuild()
        assert list(DailyFigures.objects.values(*services.FIGURE_FIELDS, "day")) == incremental
