"""
Earning-rule points limits are exact under concurrency (PostgreSQL): many earnings at once against one counter.
At most 20 worker threads, so the test holds fewer than 40 database connections.
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from apps.customers import services as customer_services
from apps.loyalty import services
from apps.loyalty.models import EarningRuleCounter, PointLot
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WORKERS = 20


def _earn_all(events):
    def run(event):
        try:
            return sum(lot.amount for lot in services.event_points_earn(custom_event=event))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(run, events))


def _rule(per_event, **limit):
    program = program_make()
    rule = services.earning_rule_create(
        program=program, name="Social like", kind="fixed_event", event_name="social_like", points=Decimal(per_event)
    )
    services.earning_rule_limit_create(rule=rule, **limit)
    return rule


def test_60_customers_at_once_share_a_rule_limit_of_50_points_exactly():
    rule = _rule("3", points=50, period="day", scope="rule")
    events = [
        customer_services.custom_event_record(customer=CustomerFactory(), name="social_like")[0] for _ in range(60)
    ]

    given = _earn_all(events)

    assert sum(given) == 50  # 16 x 3, one reduced to 2, the rest 0
    assert sorted(set(given)) == [0, 2, 3]
    assert PointLot.objects.filter(rule=rule).aggregate(total=Sum("amount"))["total"] == 50
    assert EarningRuleCounter.objects.get().used == Decimal("50")


def test_40_events_of_one_customer_at_once_never_pass_10_points_a_day():
    rule = _rule("3", points=10, period="day", scope="customer")
    customer = CustomerFactory()
    events = [customer_services.custom_event_record(customer=customer, name="social_like")[0] for _ in range(40)]

    given = _earn_all(events)

    assert sum(given) == 10
    assert PointLot.objects.filter(rule=rule).aggregate(total=Sum("amount"))["total"] == 10
    assert EarningRuleCounter.objects.get().subject == f"customer:{customer.pk}"
