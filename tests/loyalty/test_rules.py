from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum

from apps.customers import services as customer_services
from apps.loyalty import services
from apps.loyalty.models import EarningRule, PointLot
from apps.tagging import services as tagging_services
from tests.factories import CustomerFactory, ProductFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_time_boxed_bonus_doubles_points_only_for_matching_customers_inside_the_window():
    program = program_make()
    rule = EarningRule.objects.create(
        program=program,
        name="Double points for Germany",
        kind="time_bonus",
        multiplier=Decimal("2"),
        conditions={"field": "customer.country", "op": "eq", "value": "DE"},
        starts_at=MONDAY,
        ends_at=MONDAY + timedelta(days=1),
    )
    german, american = CustomerFactory(country="DE"), CustomerFactory(country="US")

    with time_machine.travel(MONDAY + timedelta(hours=1), tick=False):
        german_lots = services.order_points_earn(order=make_order(german, total="50.00"))
        american_lots = services.order_points_earn(order=make_order(american, total="50.00"))
    with time_machine.travel(MONDAY + timedelta(days=1), tick=False):
        late_lots = services.order_points_earn(order=make_order(german, total="50.00"))

    assert [(lot.amount, lot.rule_id) for lot in german_lots] == [(50, None), (50, rule.pk)]
    assert [(lot.amount, lot.rule_id) for lot in american_lots] == [(50, None)]
    assert [(lot.amount, lot.rule_id) for lot in late_lots] == [(50, None)]


def test_a_rule_whose_stored_conditions_do_not_validate_earns_nothing_but_the_base_points():
    # Saving refuses such conditions; a row written around the services (an old row) fails closed.
    program = program_make()
    EarningRule.objects.create(
        program=program,
        name="Germany",
        kind="per_amount",
        points=Decimal("1"),
        conditions={"field": "customer.country", "op": "equals", "value": "DE"},
    )
    lots = services.order_points_earn(order=make_order(CustomerFactory(country="DE"), total="10.00"))
    assert [lot.amount for lot in lots] == [10]


def test_product_tag_multiplier_earns_extra_on_tagged_lines_only():
    program = program_make()
    EarningRule.objects.create(
        program=program, name="Triple on eco", kind="product_tag_multiplier", product_tag="Eco", multiplier=Decimal("3")
    )
    eco, plain = ProductFactory(title="Eco bottle"), ProductFactory(title="Plain")
    tagging_services.product_tags_set(product=eco, names=["eco"])

    lots = services.order_points_earn(order=make_order(CustomerFactory(), total="40.00", products=[eco, plain]))

    assert [lot.amount for lot in lots] == [40, 40]  # base 40, extra (3 - 1) x 20 on the eco line


def test_per_customer_daily_limit_and_rule_total_limit():
    program = program_make()
    rule = EarningRule.objects.create(program=program, name="Bonus per dollar", kind="per_amount", points=Decimal("1"))
    services.earning_rule_limit_create(rule=rule, points=70, period="day", scope="customer")
    services.earning_rule_limit_create(rule=rule, points=100, period="total", scope="rule")
    first, second = CustomerFactory(), CustomerFactory()

    with time_machine.travel(MONDAY, tick=False):
        a = services.order_points_earn(order=make_order(first, total="50.00"))
        b = services.order_points_earn(order=make_order(first, total="50.00"))
        c = services.order_points_earn(order=make_order(first, total="50.00"))
        d = services.order_points_earn(order=make_order(second, total="50.00"))
    with time_machine.travel(MONDAY + timedelta(days=1), tick=False):
        e = services.order_points_earn(order=make_order(second, total="50.00"))

    bonus = [[lot.amount for lot in lots if lot.rule_id] for lots in (a, b, c, d, e)]
    assert bonus == [[50], [20], [], [30], []]
    assert PointLot.objects.filter(rule=rule).aggregate(total=Sum("amount"))["total"] == 100


def test_fixed_points_for_a_named_custom_event_once_per_event():
    program = program_make()
    EarningRule.objects.create(
        program=program, name="Newsletter", kind="fixed_event", event_name="newsletter_signup", points=Decimal("25")
    )
    customer = CustomerFactory()
    signup, _ = customer_services.custom_event_record(customer=customer, name="newsletter_signup")
    other, _ = customer_services.custom_event_record(customer=customer, name="review_posted")

    services.event_points_earn(custom_event=signup)
    services.event_points_earn(custom_event=signup)
    services.event_points_earn(custom_event=other)

    assert list(PointLot.objects.values_list("source_key", "amount")) == [
        (f"event:{signup.pk}:rule:{EarningRule.objects.get().pk}", 25)
    ]


def test_earn_base_excludes_discounts_and_shipping_and_respects_minimum():
    from apps.customers.services import LineInput

    program = program_make(min_order_total=Decimal("30"), rounding="nearest", points_per_unit=Decimal("0.5"))
    customer = CustomerFactory()
    order, _ = customer_services.order_create(
        customer=customer,
        currency="USD",
        lines=[LineInput(title="Shoes", quantity=1, unit_price=Decimal("100"))],
        discount_total="15",
        shipping_total="9",
    )
    small = make_order(customer, total="29.99")

    assert [lot.amount for lot in services.order_points_earn(order=order)] == [43]  # (100 - 15) x 0.5 = 42.5 → 43
    assert services.order_points_earn(order=small) == []
    assert program.pk


def test_lines_with_excluded_product_tags_earn_nothing_and_discounts_are_spread():
    from apps.customers.services import LineInput

    program_make(excluded_product_tags=["Gift Card"])
    gift, shirt = ProductFactory(title="Gift card"), ProductFactory(title="Shirt")
    tagging_services.product_tags_set(product=gift, names=["gift card"])
    order, _ = customer_services.order_create(
        customer=CustomerFactory(),
        currency="USD",
        lines=[
            LineInput(title="Gift card", quantity=1, unit_price=Decimal("50"), product=gift),
            LineInput(title="Shirt", quantity=1, unit_price=Decimal("50"), product=shirt),
        ],
        discount_total="10",
    )

    assert [lot.amount for lot in services.order_points_earn(order=order)] == [45]  # 50 - 10 x 50/100


def test_a_rule_targeting_a_tier_earns_only_for_members_of_that_tier():
    from apps.loyalty.models import Tier

    program = program_make()
    Tier.objects.create(program=program, name="Base", rank=1, threshold=0)
    silver = Tier.objects.create(program=program, name="Silver", rank=2, threshold=500)
    rule = EarningRule.objects.create(
        program=program,
        name="Silver review bonus",
        kind="fixed_event",
        event_name="review_posted",
        points=Decimal("30"),
    )
    rule.tiers.add(silver)
    member, outsider = CustomerFactory(), CustomerFactory()
    membership, _ = services.member_join(customer=member, program=program)
    services.tier_set(membership=membership, tier=silver)
    services.member_join(customer=outsider, program=program)

    for customer in (member, outsider):
        review, _ = customer_services.custom_event_record(customer=customer, name="review_posted")
        services.event_points_earn(custom_event=review)

    assert list(PointLot.objects.values_list("membership__customer_id", "amount")) == [(member.pk, 30)]
