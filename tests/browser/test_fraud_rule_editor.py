"""A fraud rule built with the visual condition editor in Chromium: velocity field, window in minutes, errors."""

import pytest

from apps.campaigns.fraud.models import FraudRule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_a_velocity_rule_is_built_visually_and_an_unfinished_one_points_at_its_input(
    logged_in, live_server, screenshot
):
    page = logged_in
    page.goto(live_server.url + "/admin/campaigns/fraudrule/add/")
    page.get_by_label("Name:").fill("Order burst")
    page.get_by_label("Trigger:").select_option("order.created")
    page.get_by_label("Action:").select_option("hold_points")
    editor = page.locator("[data-condition-widget]")
    assert editor.locator("textarea#id_condition").is_hidden()  # the JSON box is behind "Advanced"
    editor.get_by_role("button", name="+ Add a condition").click()
    rule = editor.locator(".wf-rule").last
    groups = rule.get_by_label("Field").locator("optgroup")
    assert sorted(groups.evaluate_all("els => els.map(e => e.label)")) == ["Customer", "Fraud", "Order"]
    rule.get_by_label("Field").select_option(label="Orders (window)")
    rule = editor.locator(".wf-rule").last
    rule.get_by_label("In the last").fill("30")
    rule.get_by_label("Window unit").select_option("minutes")
    rule.get_by_label("Operator").select_option(label="is at least")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"fraud-rule-editor-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.get_by_role("button", name="Save", exact=True).click()  # no value yet: refused on the value input
    page.wait_for_selector(".errorlist")
    rule = editor.locator(".wf-rule").first
    assert rule.locator(".wf-errors").inner_text() != ""
    value = rule.get_by_label("Value for Orders (window)")
    assert value.get_attribute("aria-invalid") == "true"
    assert not FraudRule.objects.filter(name="Order burst").exists()

    value.fill("5")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(live_server.url + "/admin/campaigns/fraudrule/")
    saved = FraudRule.objects.get(name="Order burst")
    assert saved.condition == {"all": [{"field": "fraud.orders", "window": {"minutes": 30}, "op": "gte", "value": 5}]}
