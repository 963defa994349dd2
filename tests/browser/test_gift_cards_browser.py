"""
In Chromium, a marketer issues a gift card in the console, a checkout spends part of it through the API, and the
card's page shows the ledger and takes a top-up; an earning rule gets a points limit inline. 1440 px and 390 px,
no horizontal overflow.
"""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.campaigns.models import GiftCard
from apps.campaigns.promotions import services
from apps.loyalty.models import EarningRuleLimit
from apps.loyalty.services import earning_rule_create
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _no_horizontal_overflow(page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"horizontal overflow: {widths}"


@pytest.mark.parametrize("width", [1440, 390])
def test_marketer_issues_a_gift_card_sees_it_spent_and_tops_it_up(logged_in, live_server, marketer, screenshot, width):
    page = logged_in
    page.set_viewport_size({"width": width, "height": 900})
    campaign = services.campaign_create(name="Holiday gift cards", type="gift_cards", status="active")

    page.goto(live_server.url + "/admin/campaigns/giftcard/add/")
    page.select_option("#id_campaign", str(campaign.pk))
    page.fill("#id_amount", "50.00")
    page.fill("#id_card_code", "xmas-0001")
    _no_horizontal_overflow(page)
    screenshot(f"gift_card_issue_{width}")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")
    card = GiftCard.objects.get()
    assert (card.code.code, card.balance) == ("XMAS-0001", Decimal("50.00"))

    api = APIClient()
    api.force_authenticate(marketer)
    cart = {
        "currency": "USD",
        "lines": [{"title": "Scarf", "quantity": 1, "unit_price": "30.00"}],
        "codes": ["XMAS-0001"],
    }
    redeemed = api.post("/api/v1/promotions/redeem", cart, format="json")
    assert redeemed.status_code == 201, redeemed.json()

    page.goto(live_server.url + f"/admin/campaigns/giftcard/{card.pk}/change/")
    ledger = page.inner_text(".gift-ledger")
    assert "-30.00" in ledger and "+50.00" in ledger
    page.fill("#id_top_up", "15.00")
    page.fill("#id_top_up_reason", "Apology")
    page.click("input[name=_continue]")
    page.wait_for_selector("text=Topped up by 15.00 USD")
    card.refresh_from_db()
    assert card.balance == Decimal("35.00")
    assert "Apology" in page.inner_text(".gift-ledger")
    _no_horizontal_overflow(page)
    screenshot(f"gift_card_ledger_{width}")


@pytest.mark.parametrize("width", [1440, 390])
def test_marketer_adds_a_points_limit_to_an_earning_rule(logged_in, live_server, screenshot, width):
    page = logged_in
    page.set_viewport_size({"width": width, "height": 900})
    rule = earning_rule_create(
        program=program_make(), name="Social like", kind="fixed_event", event_name="social_like", points=Decimal("2")
    )
    page.goto(live_server.url + f"/admin/loyalty/earningrule/{rule.pk}/change/")
    page.fill("#id_limits-0-points", "100")
    page.select_option("#id_limits-0-period", "day")
    page.select_option("#id_limits-0-scope", "customer")
    _no_horizontal_overflow(page)
    screenshot(f"earning_rule_limit_{width}")
    page.click("input[name=_continue]")
    page.wait_for_selector("text=was changed successfully")
    assert list(EarningRuleLimit.objects.values_list("points", "period", "scope")) == [(100, "day", "customer")]
