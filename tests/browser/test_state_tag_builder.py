"""
A marketer authors a state tag from scratch in the builder, in a real Chromium: the condition in the shared visual
editor, the tag, its exclusive group and rank, "entered" and "left" steps; a missing tag is refused on save with
the error on the state card; after activation the builder shows how many customers carry it — at 1440 px and 390 px
(screenshots; no horizontal overflow).
"""

import re

import pytest

from tests.factories import CustomerFactory, make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUILDER_URL = re.compile(r"/admin/automations/builder/\d+/$")
NO_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
FITS = (
    "(element) => element.scrollWidth <= element.clientWidth + 1"
    " && element.getBoundingClientRect().right <= window.innerWidth + 1"
)


def add_step(page, scope, position, kind):
    scope.locator(":scope > .wf-steps > .wf-insert > .wf-add").nth(position).click()
    page.get_by_role("menuitem", name=kind).click()


@pytest.mark.parametrize("width", [1440, 390])
def test_marketer_creates_a_state_tag_from_scratch_and_sees_its_carriers(
    live_server, logged_in, sync_worker, screenshot, width
):
    from apps.automations.models import Workflow
    from apps.tagging.models import CustomerTag

    page = logged_in
    page.set_viewport_size({"width": width, "height": 900})
    big, small = CustomerFactory(), CustomerFactory()
    make_order(big, total="1500.00")
    make_order(small, total="400.00")

    # when the marketer starts a state tag from the workflow list
    page.goto(live_server.url + "/admin/automations/builder/")
    page.get_by_role("link", name="Create a state tag").click()
    page.locator("#wf-builder[data-ready]").wait_for()
    page.get_by_label("Workflow name").fill("High spenders")
    trigger = page.locator(".wf-card-trigger")
    assert "Customers who match" in trigger.inner_text()
    rule = trigger.locator(".wf-rule").first
    rule.get_by_label("Field").select_option("customer.total_spent")
    rule.get_by_label("Operator").select_option("gte")
    rule.get_by_label("Value for Total spent").fill("1000")
    card = page.locator(".wf-card-state")
    card.get_by_label("Exclusive group").fill("Spend tier")
    card.get_by_label("Rank in the group").fill("2")
    flow = page.locator(".wf-flow")
    left = flow.locator("[aria-labelledby='wf-left-heading']")
    add_step(page, left, 0, "Action")
    action = left.locator(".wf-card-action")
    action.get_by_label("Action").select_option("customer.add_tags")
    action.get_by_label("Tags: add").type("Former high spender")
    page.keyboard.press("Enter")
    # (the tag is forgotten on purpose)
    page.get_by_role("button", name="Save draft").click()

    # then the error shows on the state card, at its input, and nothing was saved
    error = card.locator(".wf-errors")
    error.wait_for()
    assert "tag" in error.inner_text().lower()
    assert card.locator("#wf-state-tag").get_attribute("aria-invalid") == "true"
    assert Workflow.objects.count() == 0

    # when the tag is given and the draft saved
    card.get_by_label("They carry the tag").fill("High spender")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(BUILDER_URL)
    page.locator("#wf-builder[data-ready]").wait_for()
    workflow = Workflow.objects.get()
    assert workflow.definition == {
        "schema": 1,
        "trigger": {
            "event": "customer.state_tag",
            "where": {"all": [{"field": "customer.total_spent", "op": "gte", "value": 1000}]},
        },
        "state": {"tag": "High spender", "group": "Spend tier", "rank": 2},
        "steps": [],
        "left": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["Former high spender"]}}],
    }
    assert page.locator(".wf-state-count").inner_text() == "0 customers carry “High spender” now"

    # and activates it: the state tag is computed for every customer, and the builder shows the carriers
    page.get_by_role("button", name="Activate").click()
    page.locator(".wf-status-active").wait_for()
    page.wait_for_function(
        "() => document.querySelector('.wf-state-count')?.textContent === '1 customer carries “High spender” now'"
    )
    assert set(CustomerTag.objects.filter(tag__name="High spender").values_list("customer_id", flat=True)) == {big.pk}
    state = page.locator(".wf-card-state")
    assert state.evaluate(FITS)
    for field in ("#wf-state-tag", "#wf-state-group", "#wf-state-rank"):
        assert state.locator(field).evaluate(FITS)
    assert page.locator(".wf-state-carriers").inner_text() == "1 customer carries “High spender” now"
    assert page.evaluate(NO_OVERFLOW)
    screenshot(f"state-tag-builder-{width}")
