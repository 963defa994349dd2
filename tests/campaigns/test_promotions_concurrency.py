"""
Budgets are exact under concurrency (PostgreSQL): many threads redeem at once against one counter.
Threads share a pool of at most 30 workers, so the test holds fewer than 40 database connections.
"""

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from apps.campaigns.models import LimitCounter, Redemption, RedemptionItem
from apps.campaigns.promotions import services
from apps.customers.models import Customer
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WORKERS = 30


def _redeem_all(jobs):
    def run(job):
        try:
            return job()
        except DomainError as error:
            return error.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(run, jobs))


def test_first_500_of_1000_concurrent_redeemers_get_it_exactly():
    campaign_with(
        "First 500",
        automatic=True,
        incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}],
        limits=[{"measure": "redemptions", "limit": Decimal("500")}],
    )

    def job():
        return services.redemption_redeem(cart=cart(("X", 1, "10.00")), customer=None, codes=[]).status

    results = _redeem_all([job] * 1000)
    assert results.count("redeemed") == 500
    assert set(results) - {"redeemed"} <= {"budget_exhausted", "nothing_to_redeem"}
    assert Redemption.objects.filter(status="redeemed").count() == 500
    assert LimitCounter.objects.get().used == Decimal("500")


def test_a_money_cap_under_200_concurrent_random_discounts_is_never_exceeded_by_a_cent():
    campaign_with(
        "Capped",
        automatic=True,
        incentives=[{"kind": "percent_order", "percent": Decimal("50")}],
        limits=[{"measure": "discount_amount", "limit": Decimal("30000.00")}],
    )
    rng = random.Random(13)
    # orders of $500.00 to $4,999.95: 50 % off is about $1,375 each, so the $30,000 cap binds after ~22 of 200
    totals = [Decimal(rng.randint(10000, 99999)) / 100 * 5 for _ in range(200)]

    def job_for(total):
        def job():
            return services.redemption_redeem(cart=cart(("X", 1, f"{total:.2f}")), customer=None, codes=[]).status

        return job

    results = _redeem_all([job_for(total) for total in totals])
    granted = sum(RedemptionItem.objects.values_list("discount", flat=True), Decimal("0"))
    counter = LimitCounter.objects.get()
    assert counter.used == granted
    assert granted <= Decimal("30000.00")
    assert results.count("redeemed") == Redemption.objects.filter(status="redeemed").count()
    # it was really contended: the cap refused some of the 200
    assert 0 < results.count("redeemed") < 200


def test_first_500_distinct_customers_of_1000_concurrent_redeemers_get_it_exactly():
    campaign_with(
        "First 500 customers",
        automatic=True,
        incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}],
        limits=[{"measure": "distinct_customers", "limit": Decimal("500")}],
    )
    customers = Customer.objects.bulk_create([Customer(email=f"c{index}@example.com") for index in range(1000)])

    def job_for(customer):
        def job():
            return services.redemption_redeem(cart=cart(("X", 1, "10.00")), customer=customer, codes=[]).status

        return job

    results = _redeem_all([job_for(customer) for customer in customers])
    assert results.count("redeemed") == 500
    assert Redemption.objects.filter(status="redeemed").values("customer").distinct().count() == 500
    main = LimitCounter.objects.get(subject="")
    assert main.used == Decimal("500")
    assert LimitCounter.objects.filter(subject__contains="|customer:", used=1).count() == 500
