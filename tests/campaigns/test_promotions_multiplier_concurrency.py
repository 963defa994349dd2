"""
Points multipliers under concurrency (PostgreSQL): orders linked at once by threads with their own connections never
give a point over the campaign's points limit, and an order linked from two workers at once gets its extra points once.
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from apps.campaigns.models import LimitCounter, Redemption, RedemptionItem
from apps.campaigns.promotions import services
from apps.customers import services as customer_services
from apps.customers.models import Customer
from apps.loyalty.models import PointLot
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _order(customer, session, total="30.00"):
    order, _ = customer_services.order_create(
        customer=customer,
        currency="USD",
        lines=[customer_services.LineInput(title="X", quantity=1, unit_price=Decimal(total))],
        checkout_session=session,
    )
    return order


def _all_at_once(jobs, workers=20):
    def run(job):
        try:
            return job()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def test_60_orders_linked_at_once_never_give_a_point_over_a_1000_point_limit():
    program_make()
    campaign = campaign_with(
        "Double points",
        automatic=True,
        incentives=[{"kind": "points_multiplier", "multiplier": Decimal("2")}],
        limits=[{"measure": "points", "limit": Decimal("1000"), "action": "reduce"}],
    )
    customers = Customer.objects.bulk_create([Customer(email=f"m{index}@example.com") for index in range(60)])
    orders = []
    for index, customer in enumerate(customers):
        services.redemption_redeem(cart=cart(("X", 1, "30.00")), customer=customer, codes=[], session=f"s{index}")
        orders.append(_order(customer, f"s{index}"))

    _all_at_once([lambda order=order: len(services.redemption_link_order(order=order)) for order in orders])

    given = sorted(PointLot.objects.filter(source_type="promotion").values_list("amount", flat=True))
    assert sum(given) == 1000  # 33 x 30 + 10 (reduced to what was left)
    assert given.count(30) == 33 and given.count(10) == 1 and len(given) == 34
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("1000")
    assert sum(RedemptionItem.objects.values_list("points", flat=True)) == 1000


def test_one_order_awarded_from_eight_workers_at_once_gets_its_extra_points_once():
    program_make()
    campaign_with(
        "Triple points",
        automatic=True,
        incentives=[{"kind": "points_multiplier", "multiplier": Decimal("3")}],
        limits=[{"measure": "points", "limit": Decimal("500")}],
    )
    customer = Customer.objects.create(email="once@example.com")
    for _ in range(3):
        services.redemption_redeem(cart=cart(("X", 1, "30.00")), customer=customer, codes=[], session="same")
    order = _order(customer, "same")
    Redemption.objects.filter(session="same").update(order=order)  # linked; the award not run yet

    given = _all_at_once([lambda: services.order_multipliers_award(order=order)] * 8, workers=8)

    assert sorted(given) == [0] * 7 + [60]
    assert list(PointLot.objects.filter(source_type="promotion").values_list("amount", flat=True)) == [60]
    assert LimitCounter.objects.get().used == Decimal("60")
    assert sorted(RedemptionItem.objects.values_list("points", flat=True)) == [0, 0, 60]


def test_an_automatic_multiplier_applied_to_one_order_by_six_workers_at_once_is_one_redemption_and_one_lot():
    program_make()
    campaign_with(
        "Double points weekend",
        automatic=True,
        incentives=[{"kind": "points_multiplier", "multiplier": Decimal("2")}],
        limits=[{"measure": "redemptions", "limit": Decimal("100")}],
    )
    order = _order(Customer.objects.create(email="pos@example.com"), "")

    results = _all_at_once([lambda: services.order_automatic_multipliers(order=order)] * 6, workers=6)

    assert sum(1 for result in results if result is not None) == 1
    assert Redemption.objects.filter(order=order).count() == 1
    assert list(PointLot.objects.filter(source_type="promotion").values_list("amount", flat=True)) == [30]
    assert LimitCounter.objects.get().used == Decimal("1")
