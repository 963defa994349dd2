"""
The one visual condition editor in admin forms (loyalty_site.lib.forms.ConditionField), in a real Chromium:
a segment built visually with its live member count, an earning rule built visually, errors on the input.
"""

import json

import pytest
from playwright.sync_api import expect

from apps.campaigns.models import Segment
from apps.loyalty.models import EarningRule, Program
from apps.tagging.services import tags_add
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def add_rule(page, scope, field_label, op_label=None):
    """Pick a field (and an operator) in the last rule of `scope` (a locator around the editor)."""
    rule = scope.locator(".wf-rule").last
    rule.get_by_label("Field").select_option(label=field_label)
    if op_label:
        scope.locator(".wf-rule").last.get_by_label("Operator").select_option(label=op_label)
    return scope.locator(".wf-rule").last


def test_a_segment_built_visually_shows_its_live_count_and_its_members_are_computed_on_save(
    logged_in, live_server, screenshot
):
    page = logged_in
    for email in ("ana@example.com", "bo@example.com"):
        tags_add(customer=CustomerFactory(email=email), names=["VIP"])
    CustomerFactory(email="other@example.com")

    page.goto(live_server.url + "/admin/campaigns/segment/add/")
    page.get_by_label("Name:").fill("VIPs")
    editor = page.locator("[data-condition-widget]")
    editor.get_by_role("button", name="+ Add a condition").click()
    rule = add_rule(page, editor, "Customer tags", "contains")
    rule.get_by_label("Value for Customer tags").fill("VIP")

    count = editor.locator(".cw-count")
    count.wait_for()
    page.wait_for_function("() => document.querySelector('.cw-count')?.dataset.count === '2'")
    assert editor.locator(".cw-sample li").count() == 2
    assert "Matches when Customer tags contains VIP" in editor.locator(".cw-summary").inner_text()
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"segment-editor-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(live_server.url + "/admin/campaigns/segment/")
    segment = Segment.objects.get(name="VIPs")
    assert segment.condition == {"all": [{"field": "customer.tags", "op": "contains", "value": "VIP"}]}
    assert segment.member_count == 2
    members = page.get_by_test_id("segment-members")
    assert members.inner_text() == "2"
    members.click()
    page.wait_for_url("**/admin/campaigns/segmentmember/**")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)  # retries until the list has loaded


def test_an_incomplete_condition_is_refused_with_a_plain_message_on_the_very_input(logged_in, live_server):
    page = logged_in
    page.goto(live_server.url + "/admin/campaigns/segment/add/")
    page.get_by_label("Name:").fill("Unfinished")
    editor = page.locator("[data-condition-widget]")
    editor.get_by_role("button", name="+ Add a condition").click()
    add_rule(page, editor, "Customer tags", "contains")

    page.get_by_role("button", name="Save", exact=True).click()

    page.wait_for_selector(".errorlist")
    rule = page.locator("[data-condition-widget] .wf-rule").first
    assert rule.locator(".wf-errors").inner_text() == "Tag name is required."
    assert rule.get_by_label("Value for Customer tags").get_attribute("aria-invalid") == "true"
    assert Segment.objects.count() == 0
    # the advanced toggle shows the JSON that is submitted
    editor.get_by_role("button", name="Advanced: edit as JSON").click()
    assert json.loads(page.locator("textarea#id_condition").input_value()) == {
        "all": [{"field": "customer.tags", "op": "contains"}]
    }


def test_an_earning_rule_built_visually_follows_its_kind(logged_in, live_server, screenshot):
    page = logged_in
    program = Program.objects.create(name="Rewards", slug="rewards")

    page.goto(live_server.url + "/admin/loyalty/earningrule/add/")
    page.get_by_label("Program:").select_option(str(program.pk))
    page.get_by_label("Name:", exact=True).fill("Big orders")
    page.get_by_label("Kind:").select_option("per_amount")
    editor = page.locator("[data-condition-widget]")
    editor.get_by_role("button", name="+ Add a condition").click()
    groups = editor.locator(".wf-rule").last.get_by_label("Field").locator("optgroup")
    assert sorted(groups.evaluate_all("els => els.map(e => e.label)")) == ["Customer", "Order"]
    rule = add_rule(page, editor, "Order total (shop currency)", "is greater than")
    rule.get_by_label("Value for Order total (shop currency)").fill("100")
    screenshot("earning-rule-editor-1440")

    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(live_server.url + "/admin/loyalty/earningrule/")
    rule = EarningRule.objects.get(name="Big orders")
    assert rule.conditions == {"all": [{"field": "order.total_shop", "op": "gt", "value": 100}]}

    # an event rule's editor offers the event's fields instead of the order's
    page.goto(live_server.url + f"/admin/loyalty/earningrule/{rule.pk}/change/")
    page.get_by_label("Kind:").select_option("fixed_event")
    groups = page.locator("[data-condition-widget] .wf-rule").last.get_by_label("Field").locator("optgroup")
    assert sorted(groups.evaluate_all("els => els.map(e => e.label)")) == ["Customer", "Event"]
