"""
Every limit measure counts every incentive kind a campaign has (not only bonus points): a redemptions limit refuses
the next redemption of a percent-off, free-shipping, BXGY… campaign; a discount-amount cap counts the money each
kind takes off (gift cards: what the card pays) in the shop currency and refuses a cart in another currency rather
than add two currencies; order value and distinct customers count each redemption of any kind. Exact values; run on
SQLite and PostgreSQL.
"""

from decimal import Decimal

import pytest
from django.test import override_settings

from apps.campaigns.models import LimitCounter, LimitTake, Redemption, RedemptionItem
from apps.campaigns.promotions import gift_cards, services
from apps.campaigns.promotions.eligibility import promotions_evaluate
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

# kind → (incentive fields, the discount it gives on CART below: 2 x 30.00 shoes + 1 x 20.00 socks, 5.00 shipping)
SHOES = {"field": "line.title", "op": "eq", "value": "Shoes"}
KINDS = {
    "percent_order": ({"percent": Decimal("10")}, Decimal("8.00")),
    "percent_lines": ({"percent": Decimal("50"), "lines_rule": SHOES}, Decimal("30.00")),
    "fixed_order": ({"amount": Decimal("15.00")}, Decimal("15.00")),
    "fixed_per_unit": ({"amount": Decimal("4.00"), "lines_rule": SHOES}, Decimal("8.00")),
    "free_shipping": ({}, Decimal("5.00")),
    "fixed_price_item": ({"amount": Decimal("0"), "lines_rule": SHOES}, Decimal("60.00")),
    "buy_x_get_y": ({"buy_quantity": 2, "get_quantity": 1}, Decimal("20.00")),
    "points_multiplier": ({"multiplier": Decimal("2")}, Decimal("0.00")),
    "bonus_points": ({"points": 10}, Decimal("0.00")),
    "gift_card_credit": ({}, Decimal("50.00")),
}


def _cart(currency="USD"):
    return cart(("Shoes", 2, "30.00"), ("Socks", 1, "20.00"), shipping="5.00", currency=currency)


def _campaign(kind, limits):
    fields, _ = KINDS[kind]
    if kind == "gift_card_credit":
        campaign = services.campaign_create(name=f"{kind} campaign", type="gift_cards", status="active")
        for limit in limits:
            services.limit_create(campaign=campaign, **limit)
        codes = [
            gift_cards.gift_card_issue(campaign=campaign, amount=Decimal("50.00"), code=f"GIFT-{n}").code.code
            for n in range(4)
        ]
        return campaign, codes
    campaign = campaign_with(f"{kind} campaign", incentives=[{"kind": kind, **fields}], limits=limits, automatic=True)
    return campaign, [None] * 4


def _redeem(customer, code):
    return services.redemption_redeem(cart=_cart(), customer=customer, codes=[code] if code else [])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_redemptions_limit_refuses_the_next_redemption_of_every_incentive_kind(kind):
    program_make(auto_enroll=True)
    campaign, codes = _campaign(kind, [{"measure": "redemptions", "limit": Decimal("2")}])
    customers = [CustomerFactory() for _ in range(3)]

    first, second = _redeem(customers[0], codes[0]), _redeem(customers[1], codes[1])
    with pytest.raises(DomainError) as refused:
        _redeem(customers[2], codes[2])

    assert refused.value.code == "budget_exhausted"
    assert (first.status, second.status) == ("redeemed", "redeemed")
    assert Redemption.objects.count() == 2
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("2")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_discount_cap_counts_the_money_every_kind_takes_off_and_refuses_past_it(kind):
    program_make(auto_enroll=True)
    _, each = KINDS[kind]
    cap = max(each * 2, Decimal("0.01"))  # room for exactly two (a kind without money: the cap never binds)
    campaign, codes = _campaign(kind, [{"measure": "discount_amount", "limit": cap}])
    customers = [CustomerFactory() for _ in range(3)]

    _redeem(customers[0], codes[0])
    _redeem(customers[1], codes[1])
    counter = LimitCounter.objects.get(limit__campaign=campaign)
    granted = sum(RedemptionItem.objects.values_list("discount", flat=True), Decimal("0"))

    assert counter.used == each * 2 == granted
    if each:
        with pytest.raises(DomainError) as refused:
            _redeem(customers[2], codes[2])
        assert refused.value.code == "budget_exhausted"
        assert Redemption.objects.count() == 2
    else:
        assert _redeem(customers[2], codes[2]).status == "redeemed"
    counter.refresh_from_db()
    assert counter.used == each * 2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_order_value_and_distinct_customers_count_every_kind(kind):
    program_make(auto_enroll=True)
    campaign, codes = _campaign(
        kind,
        [
            {"measure": "order_value", "limit": Decimal("160.00")},  # two carts of 80.00
            {"measure": "distinct_customers", "limit": Decimal("5")},
        ],
    )
    alice, bob, carol = CustomerFactory(), CustomerFactory(), CustomerFactory()

    _redeem(alice, codes[0])
    _redeem(bob, codes[1])
    with pytest.raises(DomainError) as refused:
        _redeem(carol, codes[2])

    assert refused.value.code == "budget_exhausted"
    used = dict(LimitCounter.objects.filter(limit__campaign=campaign, subject="").values_list("limit__measure", "used"))
    assert used == {"order_value": Decimal("160.00"), "distinct_customers": Decimal("2")}


@pytest.mark.parametrize("kind", ["percent_order", "free_shipping", "buy_x_get_y", "fixed_price_item"])
def test_a_whole_rollback_gives_back_every_measure_of_every_kind(kind):
    program_make(auto_enroll=True)
    campaign, codes = _campaign(
        kind,
        [
            {"measure": "redemptions", "limit": Decimal("1")},
            {"measure": "discount_amount", "limit": Decimal("100.00")},
        ],
    )
    redemption = _redeem(CustomerFactory(), codes[0])
    services.redemption_rollback(redemption=redemption)

    assert list(LimitCounter.objects.filter(limit__campaign=campaign).values_list("used", flat=True)) == [0, 0]
    assert _redeem(CustomerFactory(), codes[1]).status == "redeemed"  # the room is free again
    assert LimitTake.objects.filter(redemption=redemption, returned=0).exclude(amount=0).count() == 0


@override_settings(SHOP_CURRENCY="USD")
def test_a_money_cap_never_adds_a_cart_of_another_currency():
    # Given a 20.00 USD discount cap on 10 % off, 8.00 USD already counted
    campaign, _ = _campaign("percent_order", [{"measure": "discount_amount", "limit": Decimal("20.00")}])
    _redeem(CustomerFactory(), None)

    # When a EUR cart asks for the same promotion
    answer = promotions_evaluate(cart=_cart("EUR"), customer=CustomerFactory(), codes=[])
    with pytest.raises(DomainError) as refused:
        services.redemption_redeem(cart=_cart("EUR"), customer=CustomerFactory(), codes=[])

    # Then it is refused by reason and path, and the counter still holds only dollars
    assert answer.applied == []
    assert (answer.skipped[0].refusal.reason, answer.skipped[0].refusal.path) == (
        "currency_mismatch",
        "cart.currency",
    )
    assert refused.value.code == "currency_mismatch"
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("8.00")
    assert Redemption.objects.count() == 1
