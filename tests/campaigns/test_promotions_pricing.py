"""Discount computation and stacking: exact cents, deterministic."""

from decimal import Decimal

import pytest

from apps.campaigns.promotions import services
from apps.campaigns.promotions.eligibility import promotions_evaluate
from apps.campaigns.promotions.pricing import allocate, percent_of
from tests.campaigns.promo_helpers import campaign_with, cart

pytestmark = pytest.mark.django_db


def test_allocate_spreads_by_largest_remainder_and_adds_up():
    assert allocate(100, [(0, 500), (1, 500), (2, 500)]) == {0: 34, 1: 33, 2: 33}
    assert allocate(1000, [(0, 3333), (1, 6667)]) == {0: 333, 1: 667}
    assert allocate(50, [(0, 10), (1, 20)]) == {0: 10, 1: 20}  # never more than a line has


def test_percent_rounds_half_to_even_once():
    assert percent_of(1005, Decimal("10")) == 100  # 100.5 -> 100
    assert percent_of(1015, Decimal("10")) == 102  # 101.5 -> 102


def evaluate(the_cart, codes=(), customer=None):
    return promotions_evaluate(cart=the_cart, customer=customer, codes=list(codes))


def test_percent_off_order_with_max_and_per_line_split():
    campaign_with(
        "Ten",
        code="TEN",
        incentives=[{"kind": "percent_order", "percent": Decimal("10"), "max_discount": Decimal("7.00")}],
    )
    outcome = evaluate(cart(("Shirt", 2, "19.99"), ("Hat", 1, "35.01")), ["ten"])
    assert outcome.discount_total == 700  # 10% of 74.99 = 7.50, capped at 7.00
    [applied] = outcome.applied
    assert applied.incentives[0].effect.lines == {0: 373, 1: 327}


def test_percent_off_matching_lines_fixed_per_unit_and_free_shipping():
    campaign_with(
        "Shoes",
        code="SHOES",
        incentives=[
            {
                "kind": "percent_lines",
                "percent": Decimal("25"),
                "lines_rule": {"field": "line.title", "op": "contains", "value": "shoe"},
            },
            {"kind": "free_shipping"},
        ],
    )
    campaign_with(
        "Socks",
        code="SOCKS",
        incentives=[
            {
                "kind": "fixed_per_unit",
                "amount": Decimal("1.50"),
                "lines_rule": {"field": "line.title", "op": "contains", "value": "sock"},
            }
        ],
    )
    outcome = evaluate(cart(("Red shoe", 1, "80.10"), ("Sock", 3, "4.00"), shipping="6.95"), ["SHOES", "SOCKS"])
    assert [applied.candidate.code_text for applied in outcome.applied] == ["SHOES", "SOCKS"]
    shoes, socks = outcome.applied
    assert shoes.incentives[0].effect.lines == {0: 2002}  # 25% of 80.10 = 20.025 -> 20.02 (half even)
    assert shoes.incentives[1].effect.shipping == 695
    assert socks.incentives[0].effect.lines == {1: 450}
    assert outcome.discount_total == 2002 + 695 + 450


def test_buy_two_get_one_free_takes_the_cheapest_units():
    campaign_with("B2G1", code="B2G1", incentives=[{"kind": "buy_x_get_y", "buy_quantity": 2, "get_quantity": 1}])
    outcome = evaluate(cart(("A", 2, "30.00"), ("B", 2, "10.00"), ("C", 2, "20.00")), ["B2G1"])
    # six units -> two free: the two cheapest (B, B)
    assert outcome.applied[0].incentives[0].effect.lines == {1: 2000}


def test_fixed_price_item_and_fixed_order():
    campaign_with(
        "Fixed",
        code="FIVER",
        incentives=[
            {
                "kind": "fixed_price_item",
                "amount": Decimal("5.00"),
                "lines_rule": {"field": "line.title", "op": "eq", "value": "Mug"},
            }
        ],
    )
    campaign_with("Ten off", code="TENOFF", incentives=[{"kind": "fixed_order", "amount": Decimal("10.00")}])
    outcome = evaluate(cart(("Mug", 2, "12.00"), ("Tea", 1, "8.00")), ["FIVER", "TENOFF"])
    assert outcome.applied[0].incentives[0].effect.lines == {0: 1400}
    # 10.00 over what is left: mug 10.00, tea 8.00 -> 5.56 / 4.44
    assert outcome.applied[1].incentives[0].effect.lines == {0: 556, 1: 444}
    assert outcome.discount_total == 2400


def _stacking_campaigns():
    campaign_with(
        "Big",
        code="BIG",
        priority=10,
        category="site",
        incentives=[{"kind": "percent_order", "percent": Decimal("20")}],
    )
    campaign_with(
        "Small",
        code="SMALL",
        priority=5,
        category="site",
        incentives=[{"kind": "percent_order", "percent": Decimal("10")}],
    )
    campaign_with(
        "Ship",
        code="SHIP",
        priority=1,
        category="shipping",
        incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}],
    )


def test_stacking_percentage_base_initial_vs_discounted():
    _stacking_campaigns()
    the_cart = lambda: cart(("Coat", 1, "100.00"))  # noqa: E731
    initial = evaluate(the_cart(), ["SMALL", "BIG"])
    assert [a.candidate.code_text for a in initial.applied] == ["BIG", "SMALL"]  # priority first
    assert [a.discount for a in initial.applied] == [2000, 1000]
    services.settings_update(percent_base="discounted")
    discounted = evaluate(the_cart(), ["SMALL", "BIG"])
    assert [a.discount for a in discounted.applied] == [2000, 800]


@pytest.mark.parametrize(
    ("big", "small", "expected_applied", "expected_reason"),
    [
        ({"stacking": "exclusive"}, {}, ["BIG"], {"SMALL": "exclusive", "SHIP": "exclusive"}),
        ({}, {"stacking": "exclusive"}, ["BIG", "SHIP"], {"SMALL": "exclusive"}),
        ({"stacking": "joint", "joint_categories": ["shipping"]}, {}, ["BIG", "SHIP"], {"SMALL": "not_joint"}),
        ({}, {}, ["BIG", "SMALL", "SHIP"], {}),
    ],
)
def test_stacking_matrix(big, small, expected_applied, expected_reason):
    _stacking_campaigns()
    from apps.campaigns.models import Campaign

    Campaign.objects.filter(name="Big").update(**big)
    Campaign.objects.filter(name="Small").update(**small)
    outcome = evaluate(cart(("Coat", 1, "100.00")), ["SHIP", "SMALL", "BIG"])
    assert [a.candidate.code_text for a in outcome.applied] == expected_applied
    assert {c.code_text: c.refusal.reason for c in outcome.skipped} == expected_reason
    expected_total = {("BIG",): 2000, ("BIG", "SHIP"): 2500, ("BIG", "SMALL", "SHIP"): 3500}[tuple(expected_applied)]
    assert outcome.discount_total == expected_total


def test_max_per_order_and_per_category():
    _stacking_campaigns()
    services.settings_update(max_per_order=2)
    outcome = evaluate(cart(("Coat", 1, "100.00")), ["SHIP", "SMALL", "BIG"])
    assert [a.candidate.code_text for a in outcome.applied] == ["BIG", "SMALL"]
    assert outcome.skipped[0].refusal.reason == "max_per_order"
    services.settings_update(max_per_order=5, max_per_category=1)
    outcome = evaluate(cart(("Coat", 1, "100.00")), ["SHIP", "SMALL", "BIG"])
    assert [a.candidate.code_text for a in outcome.applied] == ["BIG", "SHIP"]
    assert [(c.code_text, c.refusal.reason, c.refusal.path) for c in outcome.skipped] == [
        ("SMALL", "max_per_category", "stacking.max_per_category")
    ]


def test_reject_all_mode_voids_every_incentive_when_a_code_fails():
    _stacking_campaigns()
    services.settings_update(failure_mode="reject_all")
    outcome = evaluate(cart(("Coat", 1, "100.00")), ["BIG", "NOPE"])
    assert outcome.applied == []
    assert outcome.discount_total == 0
    assert [(c.code_text, c.refusal.reason) for c in outcome.skipped] == [
        ("BIG", "rejected_all"),
        ("NOPE", "code_unknown"),
    ]


def test_same_cart_same_answer():
    _stacking_campaigns()
    first = evaluate(cart(("Coat", 1, "99.99"), ("Hat", 3, "3.33")), ["SHIP", "BIG", "SMALL"])
    second = evaluate(cart(("Coat", 1, "99.99"), ("Hat", 3, "3.33")), ["SMALL", "SHIP", "BIG"])
    assert [(a.candidate.code_text, [i.effect.lines for i in a.incentives]) for a in first.applied] == [
        (a.candidate.code_text, [i.effect.lines for i in a.incentives]) for a in second.applied
    ]
