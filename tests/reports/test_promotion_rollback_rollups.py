"""
A promotion rollback lowers the campaign figures of the day the redemption was redeemed: the order value by what was
given back and the discount by the share the rollback recorded on the redemption's items (discount x rolled back /
order total, to the cent, from the cumulative share) — and the next refresh recomputes exactly that day.
"""

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from apps.campaigns.models import RedemptionItem
from apps.campaigns.promotions import services as promo_services
from apps.reports import services
from apps.reports.models import DailyCampaign, DailyFigures
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.factories import CustomerFactory

from .helpers import at

pytestmark = pytest.mark.django_db


def campaign_figures(day: str) -> tuple:
    row = DailyCampaign.objects.get(day=date.fromisoformat(day))
    figures = DailyFigures.objects.get(day=date.fromisoformat(day))
    return (
        row.redemptions,
        row.discount,
        row.order_value,
        figures.campaign_redemptions,
        figures.discount_cost,
        figures.campaign_order_value,
    )


def test_partial_rollbacks_lower_the_discount_by_the_recorded_share_and_refresh_only_the_redemption_day():
    with time_machine.travel(at("2026-03-05", 9), tick=False):  # the customers are created that day too
        spring = campaign_with(
            "Spring", incentives=[{"kind": "fixed_order", "amount": Decimal("10.00")}], automatic=True
        )
        first = promo_services.redemption_redeem(
            cart=cart(("Shoes", 1, "90.00")), customer=CustomerFactory(), codes=[], now=at("2026-03-05", 10)
        )
        promo_services.redemption_redeem(
            cart=cart(("Socks", 2, "30.00")), customer=CustomerFactory(), codes=[], now=at("2026-03-05", 11)
        )
    assert (first.order_total, first.discount_total) == (Decimal("90.00"), Decimal("10.00"))
    with time_machine.travel(at("2026-03-06"), tick=False):
        services.rollups_refresh()
    # 2 redemptions, 10.00 + 10.00 discount, 90.00 + 60.00 order value
    assert campaign_figures("2026-03-05") == (
        2,
        Decimal("20.00"),
        Decimal("150.00"),
        2,
        Decimal("20.00"),
        Decimal("150.00"),
    )
    assert DailyCampaign.objects.get().campaign_id == spring.pk

    # 5.00 of 90.00 refunded: 10.00 x 5/90 = 0.5555… → 0.56 of the discount given back
    with time_machine.travel(at("2026-03-10", 9), tick=False):
        promo_services.redemption_rollback(redemption=first, amount=Decimal("5.00"))
    with time_machine.travel(at("2026-03-10", 10), tick=False):
        result = services.rollups_refresh()
    assert result.days == [date(2026, 3, 5)]
    assert campaign_figures("2026-03-05") == (
        2,
        Decimal("19.44"),
        Decimal("145.00"),
        2,
        Decimal("19.44"),
        Decimal("145.00"),
    )

    # another 5.00: the cumulative share 10/90 gives 1.11 in all (not 0.56 + 0.56 = 1.12)
    with time_machine.travel(at("2026-03-11", 9), tick=False):
        promo_services.redemption_rollback(redemption=first, amount=Decimal("5.00"))
    first.refresh_from_db()
    assert (first.rolled_back_total, first.discount_rolled_back) == (Decimal("10.00"), Decimal("1.11"))
    assert RedemptionItem.objects.get(redemption=first).discount_returned == Decimal("1.11")
    with time_machine.travel(at("2026-03-11", 10), tick=False):
        result = services.rollups_refresh()
    assert result.days == [date(2026, 3, 5)]
    assert campaign_figures("2026-03-05") == (
        2,
        Decimal("18.89"),
        Decimal("140.00"),
        2,
        Decimal("18.89"),
        Decimal("140.00"),
    )

    # the rest: a whole rollback, the redemption leaves the figures
    with time_machine.travel(at("2026-03-12", 9), tick=False):
        promo_services.redemption_rollback(redemption=first)
    with time_machine.travel(at("2026-03-12", 10), tick=False):
        result = services.rollups_refresh()
    assert result.days == [date(2026, 3, 5)]
    assert campaign_figures("2026-03-05") == (
        1,
        Decimal("10.00"),
        Decimal("60.00"),
        1,
        Decimal("10.00"),
        Decimal("60.00"),
    )
    with time_machine.travel(at("2026-03-12", 11), tick=False):
        services.rollups_rebuild()
    assert campaign_figures("2026-03-05") == (
        1,
        Decimal("10.00"),
        Decimal("60.00"),
        1,
        Decimal("10.00"),
        Decimal("60.00"),
    )
