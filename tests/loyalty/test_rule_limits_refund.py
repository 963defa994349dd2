"""A refund (or cancellation, or rejected hold) that takes points back frees that room under the rule's limits."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from apps.customers import services as customer_services
from apps.loyalty import services
from apps.loyalty.models import EarningRuleCounter, EarningRuleTake, PointLot
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _bonus_rule(**limit):
    rule = services.earning_rule_create(
        program=program_make(), name="Bonus per dollar", kind="per_amount", points=Decimal("1")
    )
    services.earning_rule_limit_create(rule=rule, **limit)
    return rule


def _bonus(lots):
    return [lot.amount for lot in lots if lot.rule_id]


def test_a_partial_refund_frees_exactly_the_points_it_takes_back_under_a_daily_limit():
    rule = _bonus_rule(points=60, period="day", scope="customer")
    customer = CustomerFactory()
    with time_machine.travel(MONDAY, tick=False):
        order = make_order(customer, total="50.00")
        first = services.order_points_earn(order=order)
        customer_services.refund_create(order=order, amount="20.00")
        taken = services.order_points_reverse(order=order)
        counter = EarningRuleCounter.objects.get()
        after_refund = counter.used
        second = services.order_points_earn(order=make_order(customer, total="50.00"))
        third = services.order_points_earn(order=make_order(customer, total="50.00"))

    assert _bonus(first) == [50]
    assert taken == 40  # 20 of the base lot and 20 of the rule's lot (50 x 20 / 50)
    assert after_refund == Decimal("30")  # 50 - 20: the rule's 20 points taken back freed 20
    assert _bonus(second) == [30]  # 60 - 30 left
    assert _bonus(third) == []
    counter.refresh_from_db()
    assert counter.used == Decimal("60")
    rule_lot = PointLot.objects.get(source_key=f"order:{order.pk}:rule:{rule.pk}")
    assert list(EarningRuleTake.objects.filter(lot=rule_lot).values_list("amount", "returned")) == [(50, 20)]


def test_a_cancellation_frees_the_whole_earning_under_a_rule_wide_total_limit():
    rule = _bonus_rule(points=80, period="total", scope="rule")
    alice, bob = CustomerFactory(), CustomerFactory()
    with time_machine.travel(MONDAY, tick=False):
        order = make_order(alice, total="50.00")
        services.order_points_earn(order=order)
        refused_room = _bonus(services.order_points_earn(order=make_order(bob, total="50.00")))
        customer_services.order_cancel(order=order)
        services.order_points_reverse(order=order)
        after = _bonus(services.order_points_earn(order=make_order(bob, total="50.00")))

    assert refused_room == [30]
    assert after == [50]  # alice's 50 came back to the rule's total
    assert EarningRuleCounter.objects.get().used == Decimal("80")
    assert PointLot.objects.filter(rule=rule).count() == 3


def test_a_refund_of_last_weeks_earning_does_not_free_this_weeks_room():
    _bonus_rule(points=60, period="week", scope="customer")
    customer = CustomerFactory()
    with time_machine.travel(MONDAY, tick=False):
        old_order = make_order(customer, total="60.00")
        services.order_points_earn(order=old_order)
    with time_machine.travel(MONDAY + timedelta(days=7), tick=False):
        this_week = _bonus(services.order_points_earn(order=make_order(customer, total="60.00")))
        customer_services.refund_create(order=old_order, amount="60.00")
        services.order_points_reverse(order=old_order)
        after = _bonus(services.order_points_earn(order=make_order(customer, total="10.00")))

    assert this_week == [60]
    assert after == []  # the refund gave its 60 back to last week's counter, not to this week's
    assert sorted((c.bucket.isoformat(), c.used) for c in EarningRuleCounter.objects.all()) == [
        ("2026-03-02", Decimal("0")),
        ("2026-03-09", Decimal("60")),
    ]


def test_points_earned_without_a_rule_take_nothing_back_from_limits():
    _bonus_rule(points=60, period="day", scope="customer")
    customer = CustomerFactory()
    with time_machine.travel(MONDAY, tick=False):
        order = make_order(customer, total="30.00")
        services.order_points_earn(order=order)
        customer_services.refund_create(order=order, amount="30.00")
        services.order_points_reverse(order=order)

    assert EarningRuleCounter.objects.get().used == Decimal("0")
    assert EarningRuleTake.objects.get().returned == 30
