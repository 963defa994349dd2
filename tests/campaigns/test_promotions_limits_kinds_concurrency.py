"""
Every incentive kind is counted exactly under concurrency (PostgreSQL): threads with their own connections redeem
at once against one campaign's counters, as in test_promotions_concurrency.
"""

from decimal import Decimal

import pytest

from apps.campaigns.models import LimitCounter, Redemption, RedemptionItem
from apps.campaigns.promotions import services
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.campaigns.test_promotions_concurrency import _redeem_all

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_percent_off_campaign_refuses_the_501st_of_600_concurrent_redemptions():
    campaign_with(
        "Ten off, first 500",
        automatic=True,
        incentives=[{"kind": "percent_order", "percent": Decimal("10")}],
        limits=[{"measure": "redemptions", "limit": Decimal("500")}],
    )

    def job():
        return services.redemption_redeem(cart=cart(("X", 1, "10.00")), customer=None, codes=[]).status

    results = _redeem_all([job] * 600)

    assert results.count("redeemed") == 500
    # (a redeemer whose unlocked probe passed but who finds the counter full under the lock: nothing_to_redeem)
    assert len(results) - 500 == results.count("budget_exhausted") + results.count("nothing_to_redeem") == 100
    assert Redemption.objects.filter(status="redeemed").count() == 500
    assert LimitCounter.objects.get().used == Decimal("500")
    assert sum(RedemptionItem.objects.values_list("discount", flat=True), Decimal("0")) == Decimal("500.00")


def test_a_discount_cap_over_free_shipping_and_bxgy_together_is_exact_to_the_cent_under_concurrency():
    # Given one campaign giving free shipping (7.50) and buy 2 get 1 (the cheapest of 3 units free: 5.00) = 12.50
    campaign_with(
        "Shipping and a free one",
        automatic=True,
        incentives=[{"kind": "free_shipping"}, {"kind": "buy_x_get_y", "buy_quantity": 2, "get_quantity": 1}],
        limits=[{"measure": "discount_amount", "limit": Decimal("1000.00")}],
    )

    def job():
        basket = cart(("A", 2, "9.00"), ("B", 1, "5.00"), shipping="7.50")
        return services.redemption_redeem(cart=basket, customer=None, codes=[]).status

    results = _redeem_all([job] * 120)

    # Then exactly 80 x 12.50 = 1,000.00 was granted, every cent counted, none over
    assert results.count("redeemed") == 80
    granted = sum(RedemptionItem.objects.values_list("discount", flat=True), Decimal("0"))
    assert granted == LimitCounter.objects.get().used == Decimal("1000.00")
