"""
A campaign's points limit is exact under concurrency (PostgreSQL): members redeem a bonus-points campaign at once;
the points awarded never exceed the limit and equal its counter, and a concurrent partial rollback frees exactly the
points it takes back. Threads share a pool of at most 30 workers (fewer than 40 database connections).
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F, Sum

from apps.campaigns.models import LimitCounter, Redemption
from apps.campaigns.promotions import services
from apps.loyalty.models import Balance, PointLot
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WORKERS = 30


def _run_all(jobs):
    def run(job):
        try:
            return job()
        except DomainError as error:
            return error.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(run, jobs))


def _redeem_job(customer):
    def job():
        return services.redemption_redeem(cart=cart(("X", 1, "100.00")), customer=customer, codes=[]).status

    return job


def _awarded():
    return PointLot.objects.filter(source_type="promotion").aggregate(total=Sum(F("amount") - F("reversed_amount")))[
        "total"
    ]


def test_120_members_redeeming_at_once_never_overrun_a_1000_point_limit():
    program_make()
    campaign_with(
        "Bonus 30",
        automatic=True,
        incentives=[{"kind": "bonus_points", "points": 30}],
        limits=[{"measure": "points", "limit": Decimal("1000"), "action": "reduce"}],
    )
    members = [CustomerFactory() for _ in range(120)]

    results = _run_all([_redeem_job(member) for member in members])

    assert _awarded() == 1000  # 33 awards of 30 and one reduced to 10: exactly the limit
    assert LimitCounter.objects.get().used == Decimal("1000")
    assert results.count("redeemed") == 34
    # refused by the lock-free probe (budget_exhausted) or on the locked re-evaluation (nothing_to_redeem)
    assert set(results) - {"redeemed"} <= {"budget_exhausted", "nothing_to_redeem"}
    assert Balance.objects.aggregate(total=Sum("active"))["total"] == 1000


def test_redeemers_and_partial_rollbacks_at_once_keep_the_counter_equal_to_the_points_held():
    program_make()
    campaign_with(
        "Bonus 40",
        automatic=True,
        incentives=[{"kind": "bonus_points", "points": 40}],
        limits=[{"measure": "points", "limit": Decimal("800")}],
    )
    first = [CustomerFactory() for _ in range(10)]
    for member in first:
        _redeem_job(member)()
    rollbacks = [
        (lambda redemption=redemption: services.redemption_rollback(redemption=redemption, amount=Decimal("50.00")))
        for redemption in Redemption.objects.filter(status="redeemed")
    ]
    late = [_redeem_job(CustomerFactory()) for _ in range(20)]

    _run_all([job for pair in zip(rollbacks + [None] * 10, late, strict=True) for job in pair if job is not None])

    held = _awarded()
    assert LimitCounter.objects.get().used == Decimal(held)
    assert held <= 800
    # the 10 half-rolled-back redemptions keep 20 points each; the rest of the room went to late redeemers
    assert held == 10 * 20 + 40 * Redemption.objects.filter(status="redeemed").exclude(customer__in=first).count()
