"""The marketer's flow in Chromium: campaign with a rule and a budget, codes, simulator, redeem, meter, kill switch."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.campaigns.models import Campaign, Code

pytestmark = pytest.mark.django_db(transaction=True)


def test_marketer_runs_a_budgeted_campaign_and_hits_the_kill_switch(logged_in, live_server, marketer, screenshot):
    page = logged_in
    # Create a campaign with a validation rule and a budget in the admin.
    page.goto(live_server.url + "/admin/campaigns/campaign/add/")
    page.fill("#id_name", "Shoe week")
    page.select_option("#id_status", "active")
    page.get_by_role("button", name="Advanced: edit as JSON").click()  # (the visual editor's JSON view)
    page.fill("textarea#id_validation_rule", '{"field": "cart.total", "op": "gte", "value": 50}')
    page.select_option("#id_incentives-0-kind", "percent_order")
    page.fill("#id_incentives-0-percent", "10")
    page.select_option("#id_limits-0-measure", "discount_amount")
    page.fill("#id_limits-0-limit", "100.00")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")
    campaign = Campaign.objects.get(name="Shoe week")
    assert campaign.validation_rule == {"field": "cart.total", "op": "gte", "value": 50}
    assert list(campaign.limits.values_list("measure", "limit")) == [("discount_amount", Decimal("100.00"))]

    # Generate codes with the admin action.
    page.goto(live_server.url + "/admin/campaigns/campaign/")
    page.check(f"input[name=_selected_action][value='{campaign.pk}']")
    page.select_option("select[name=action]", "generate_codes")
    page.click("button[name=index]")
    page.wait_for_selector("text=Generated 100 codes")
    code = Code.objects.filter(campaign=campaign).order_by("pk").first().code

    # Simulate a cart: too small, then big enough.
    page.goto(live_server.url + "/admin/campaigns/promotions/simulator/")
    page.fill("#id_lines", "Trail shoe | 1 | 40.00")
    page.fill("#id_codes", code.lower())
    page.click("[data-testid=simulate]")
    assert "rule_failed" in page.inner_text("[data-testid=skipped]")
    page.fill("#id_lines", "Trail shoe | 2 | 60.00")
    page.click("[data-testid=simulate]")
    assert "12.00" in page.inner_text("[data-testid=applied]")
    screenshot("promotions_simulator")

    # Redeem through the API; the budget meter moves.
    api = APIClient()
    api.force_authenticate(marketer)
    cart = {
        "currency": "USD",
        "lines": [{"title": "Trail shoe", "quantity": 2, "unit_price": "60.00"}],
        "codes": [code],
    }
    assert api.post("/api/v1/promotions/redeem", cart, format="json").status_code == 201
    page.goto(live_server.url + "/admin/campaigns/campaign/")
    assert "12.00 / 100.00 (12.0%)" in page.inner_text("#result_list")

    # Hit the kill switch: banner on every admin page, the very next validation refuses.
    page.goto(live_server.url + "/admin/campaigns/promotions/kill-switch/")
    page.fill("#id_reason", "Pricing error")
    page.click("[data-testid=kill-switch-on]")
    page.wait_for_selector("[data-testid=kill-switch-banner]")
    page.goto(live_server.url + "/admin/customers/customer/")
    assert "Pricing error" in page.inner_text("[data-testid=kill-switch-banner]")
    screenshot("promotions_kill_switch")
    answer = api.post(
        "/api/v1/promotions/validate",
        {**cart, "codes": [Code.objects.filter(campaign=campaign, uses=0).first().code]},
        format="json",
    ).json()
    assert answer["skipped"][0]["reason"] == "kill_switch"
    page.goto(live_server.url + "/admin/campaigns/promotions/kill-switch/")
    page.click("[data-testid=kill-switch-off]")
    page.wait_for_selector("text=Kill switch off.")
    assert page.locator("[data-testid=kill-switch-banner]").count() == 0
