"""
The three marketer scenarios of the builder issue, in a real Chromium against the live server.

The worker is made deterministic: django-q2 runs enqueued tasks synchronously in the live server's process.
"""

import os
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from apps.platform.services import api_token_create
from apps.tagging.models import CustomerTag
from loyalty_site.lib.conditions import field_get
from loyalty_site.lib.conditions.operators import OPERATORS
from tests.factories import CustomerFactory, make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUILDER_URL = re.compile(r"/admin/automations/builder/\d+/$")
RUN_URL = re.compile(r"/admin/automations/runs/\d+/$")
# Whether the page's beforeunload handler would ask before leaving.
LEAVING_IS_HELD = """() => {
    const event = new Event("beforeunload", {cancelable: true});
    window.dispatchEvent(event);
    return event.defaultPrevented;
}"""


def workflow_models():
    from apps.automations.models import Workflow, WorkflowRun

    return Workflow, WorkflowRun


def tags_of(customer):
    return sorted(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


def shoot(page, screenshot, name):
    """Screenshots start at the top so the sticky toolbar sits where it belongs."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(name)


def add_step(page, scope, position, kind):
    """Open the "+" menu at `position` of the step list in `scope` and pick Condition / Action / Wait."""
    scope.locator(":scope > .wf-steps > .wf-insert > .wf-add").nth(position).click()
    page.get_by_role("menuitem", name=kind).click()


def test_marketer_builds_inactive_high_value_workflow_fixes_an_error_activates_runs_it_and_finds_the_result(
    live_server, logged_in, sync_worker, screenshot
):
    page = logged_in
    Workflow, WorkflowRun = workflow_models()
    now = timezone.now()
    # given: one inactive high-value customer and three who must not be tagged
    lapsed_big = CustomerFactory(email="lapsed.big@example.com")
    make_order(lapsed_big, total="650.00", placed_at=now - timedelta(days=45))
    lapsed_small = CustomerFactory(email="lapsed.small@example.com")
    make_order(lapsed_small, total="120.00", placed_at=now - timedelta(days=45))
    recent_big = CustomerFactory(email="recent.big@example.com")
    make_order(recent_big, total="900.00", placed_at=now - timedelta(days=3))
    exactly_500 = CustomerFactory(email="exactly500@example.com")
    make_order(exactly_500, total="500.00", placed_at=now - timedelta(days=60))

    # when the marketer builds the workflow from scratch
    page.goto(live_server.url + "/admin/automations/builder/")
    page.get_by_role("link", name="Create workflow").click()
    page.locator("[data-trigger='customer.bulk_activity']").click()
    page.get_by_label("Workflow name").fill("Inactive high-value customers")
    flow = page.locator(".wf-flow")
    add_step(page, flow, 0, "Condition")
    condition = page.locator(".wf-card-condition").first
    first_rule = condition.locator(".wf-rule").nth(0)
    first_rule.get_by_label("Field").select_option("customer.orders_count")
    first_rule.get_by_label("In the last (days)").fill("30")
    first_rule.get_by_label("Operator").select_option("eq")
    first_rule.get_by_label("Value for Number of orders").fill("0")
    condition.get_by_role("button", name="+ Condition").click()
    second_rule = condition.locator(".wf-rule").nth(1)
    second_rule.get_by_label("Field").select_option("customer.total_spent")
    second_rule.get_by_label("Operator").select_option("gt")
    # the operators offered, and their labels, are the catalog's operator table
    offered = second_rule.get_by_label("Operator").locator("option")
    assert offered.evaluate_all("options => options.map((o) => [o.value, o.textContent])") == [
        [op, OPERATORS[op].label] for op in field_get("customer.total_spent").operators
    ]
    # (the amount is forgotten on purpose)
    add_step(page, condition.locator(".wf-then"), 0, "Action")
    action = condition.locator(".wf-then .wf-card-action")
    action.get_by_label("Action").select_option("customer.add_tags")
    action.get_by_label("Tags: add").type("Inactive high-value customer")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Save draft").click()

    # then the error shows on the condition card, and nothing was saved
    error = condition.locator(".wf-errors")
    error.wait_for()
    assert "value" in error.inner_text().lower()
    assert Workflow.objects.count() == 0
    shoot(page, screenshot, "builder-validation-error")

    # when the marketer fixes it and saves
    second_rule.get_by_label("Value for Total spent").fill("500")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(BUILDER_URL)
    workflow = Workflow.objects.get()
    assert workflow.status == "draft"
    assert workflow.definition["steps"][0]["if"] == {
        "all": [
            {"field": "customer.orders_count", "window": {"days": 30}, "op": "eq", "value": 0},
            {"field": "customer.total_spent", "op": "gt", "value": 500},
        ]
    }
    assert workflow.definition["steps"][0]["then"][0]["params"] == {"tags": ["Inactive high-value customer"]}
    page.locator("#wf-builder[data-ready]").wait_for()
    shoot(page, screenshot, "builder")
    page.set_viewport_size({"width": 1920, "height": 1080})
    shoot(page, screenshot, "builder-1920")
    page.set_viewport_size({"width": 1280, "height": 900})

    # and activates it, then runs it now
    page.get_by_role("button", name="Activate").click()
    page.locator(".wf-status-active").wait_for()
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(RUN_URL)

    # then exactly the inactive high-value customer is tagged
    assert tags_of(lapsed_big) == ["Inactive high-value customer"]
    assert tags_of(lapsed_small) == []
    assert tags_of(recent_big) == []
    assert tags_of(exactly_500) == []
    assert page.locator("#wf-run-status").text_content() == "succeeded"
    assert page.locator("[data-figure='matched']").inner_text() == "4"
    assert page.locator(".wf-run-step[data-step='s1'] .wf-trace-badge").all_inner_texts() == ["then: 1", "else: 3"]
    assert page.locator(".wf-run-step[data-step='s2'] .wf-trace-badge").all_inner_texts() == ["customers: 1"]
    shoot(page, screenshot, "run-page-bulk")

    # and the marketer finds the tagged customers and the run in the history
    page.goto(live_server.url + "/admin/tagging/customertag/?q=Inactive+high-value")
    assert page.locator("#result_list tbody tr").count() == 1
    assert str(lapsed_big) in page.locator("#result_list").inner_text()
    page.goto(live_server.url + "/admin/automations/builder/")
    listed = page.locator(f"tr[data-workflow='{workflow.pk}']")
    assert listed.locator(".wf-counts span").all_inner_texts() == ["1", "0", "0"]
    shoot(page, screenshot, "workflow-list")
    page.goto(live_server.url + "/admin/automations/runs/")
    run = WorkflowRun.objects.get(workflow=workflow)
    row = page.locator(f"tr[data-run='{run.pk}']")
    assert "Inactive high-value customers" in row.inner_text()
    assert "succeeded" in row.text_content()
    shoot(page, screenshot, "run-history")


def test_marketer_installs_a_template_with_changed_params_and_test_runs_it_reading_the_trace(
    live_server, logged_in, screenshot
):
    page = logged_in
    Workflow, WorkflowRun = workflow_models()
    now = timezone.now()
    # given a customer with 3 orders worth $750 in the last 30 days
    customer = CustomerFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    for days, total in [(20, "250.00"), (10, "250.00"), (2, "250.00")]:
        make_order(customer, total=total, placed_at=now - timedelta(days=days))

    # when the marketer installs "active high-value" with another tag and a lower threshold
    page.goto(live_server.url + "/admin/automations/gallery/")
    card = page.locator("#template-active_high_value")
    card.get_by_text("Customise & install").click()
    card.get_by_label("Tag").fill("VIP spender")
    card.get_by_label("Spent at least").fill("700")
    shoot(page, screenshot, "gallery")
    card.get_by_role("button", name="Install").click()
    page.wait_for_url(BUILDER_URL)
    workflow = Workflow.objects.get()
    assert workflow.status == "draft"
    assert workflow.definition["state"] == {"tag": "VIP spender"}  # a state tag: its condition is the filter
    assert workflow.definition["trigger"]["where"]["all"][1]["value"] == 700
    assert "State tag" in page.locator(".wf-page-links").inner_text()

    # and test-runs it for Ada
    page.get_by_role("combobox", name="Customer").fill("ada")
    page.get_by_role("option", name="Ada Lovelace · ada@example.com").click()
    page.get_by_role("button", name="Run test").click()

    # then the trace shows the condition passed with the values read
    trigger = page.locator(".wf-card-trigger")
    badge = trigger.locator(":scope > header .wf-trace-badge")
    badge.wait_for()
    assert badge.inner_text() == "filter passed"
    traced = " ".join(trigger.locator(".wf-trace-inline").all_inner_texts())
    assert "3" in traced and "750" in traced
    shoot(page, screenshot, "builder-trace")
    # and nothing changed
    assert tags_of(customer) == []
    assert WorkflowRun.objects.filter(kind__in=["event", "bulk"]).count() == 0


def test_marketer_builds_if_then_else_with_a_dynamic_parameter_and_sees_the_run_of_an_api_order(
    live_server, logged_in, sync_worker, marketer, screenshot
):
    page = logged_in
    Workflow, WorkflowRun = workflow_models()
    customer = CustomerFactory(email="grace@example.com", external_id="grace")
    _, token = api_token_create(user=marketer, name="shop", scopes=["ingest"])

    # when the marketer builds: order total >= 100 -> tag "Big order {{ order.currency }}", else "Small order"
    page.goto(live_server.url + "/admin/automations/builder/new/")
    page.locator("[data-trigger='order.created']").click()
    page.get_by_label("Workflow name").fill("Order size")
    add_step(page, page.locator(".wf-flow"), 0, "Condition")
    condition = page.locator(".wf-card-condition").first
    rule = condition.locator(".wf-rule").first
    rule.get_by_label("Field").select_option("order.total")
    rule.get_by_label("Operator").select_option("gte")
    rule.get_by_label("Value for Order total").fill("100")
    add_step(page, condition.locator(".wf-then"), 0, "Action")
    then_action = condition.locator(".wf-then .wf-card-action")
    then_action.get_by_label("Action").select_option("customer.add_tags")
    tag_input = then_action.get_by_label("Tags: add")
    tag_input.type("Big order ")
    then_action.get_by_role("button", name="Insert dynamic parameter").click()
    page.get_by_label("Search parameters").type("currency")
    page.locator(".wf-x-item[data-param='order.currency']").click()
    tag_input.press("Enter")
    add_step(page, condition.locator(".wf-else"), 0, "Action")
    else_action = condition.locator(".wf-else .wf-card-action")
    else_action.get_by_label("Action").select_option("customer.add_tags")
    else_action.get_by_label("Tags: add").type("Small order")
    else_action.get_by_label("Tags: add").press("Enter")
    # (leaving now would warn: the changes are not saved)
    assert page.evaluate(LEAVING_IS_HELD) is True
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(BUILDER_URL)
    page.locator("#wf-builder[data-ready]").wait_for()
    assert page.evaluate(LEAVING_IS_HELD) is False
    page.get_by_role("button", name="Activate").click()
    page.locator(".wf-status-active").wait_for()
    workflow = Workflow.objects.get()
    assert workflow.definition["steps"][0]["then"][0]["params"] == {"tags": ["Big order {{ order.currency }}"]}

    # and an integrator posts an order through the API
    response = page.request.post(
        live_server.url + "/api/v1/orders/",
        headers={"Authorization": f"Bearer {token}"},
        data={
            "customer_external_id": "grace",
            "currency": "EUR",
            "lines": [{"title": "Espresso machine", "quantity": 1, "unit_price": "149.00"}],
        },
    )
    assert response.status == 201, response.text()

    # then the run is in the workflow's history with the then-branch taken
    run = WorkflowRun.objects.get(workflow=workflow)
    assert run.status == "succeeded"
    assert tags_of(customer) == ["Big order EUR"]
    page.goto(f"{live_server.url}/admin/automations/builder/{workflow.pk}/runs/")
    page.locator(f"tr[data-run='{run.pk}'] a").first.click()
    condition_step = page.locator(".wf-run-step[data-step='s1']")
    assert "branch: then" in condition_step.inner_text()
    assert condition_step.get_attribute("class").split() == ["wf-run-step", "is-green"]
    shoot(page, screenshot, "run-page")

    # and the customer's admin page says why the workflow fired
    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    why = page.locator("#why-not-fired")
    assert why.locator(f"li[data-workflow='{workflow.pk}']").text_content().split() == ["Order", "size:", "succeeded"]
    why.screenshot(path=os.path.join(settings.BASE_DIR, "test-artifacts", "why-not-fired.png"))
    assert Decimal("149.00") == customer.orders.get().total


def test_marketer_reorders_steps_by_keyboard_and_drag_then_restores_an_old_version(live_server, logged_in, screenshot):
    from apps.automations.services import workflow_activate, workflow_create, workflow_update

    page = logged_in
    page.set_viewport_size({"width": 1920, "height": 1600})
    first = {
        "schema": 1,
        "trigger": {"event": "order.created"},
        "steps": [
            {"id": "s1", "action": "customer.add_tags", "params": {"tags": ["A"]}},
            {"id": "s2", "wait": {"days": 2}},
            {"id": "s3", "action": "customer.add_tags", "params": {"tags": ["C"]}},
        ],
    }
    workflow = workflow_activate(workflow=workflow_create(name="Reorder me", definition=first))
    second = {
        **first,
        "steps": [*first["steps"], {"id": "s4", "action": "customer.remove_tags", "params": {"tags": ["A"]}}],
    }
    workflow = workflow_activate(workflow=workflow_update(workflow=workflow, definition=second))
    page.goto(f"{live_server.url}/admin/automations/builder/{workflow.pk}/")
    page.locator("#wf-builder[data-ready]").wait_for()

    def order():
        return page.locator(".wf-flow > .wf-steps > .wf-card").evaluate_all("cards => cards.map(c => c.dataset.step)")

    # when the marketer moves s3 up with the keyboard and drags s4 to the top
    page.locator(".wf-card[data-step='s3']").get_by_role("button", name="Move Add customer tags up").focus()
    page.keyboard.press("Enter")
    assert order() == ["s1", "s3", "s2", "s4"]
    page.drag_and_drop(".wf-card[data-step='s4'] > header", ".wf-flow > .wf-steps > .wf-insert >> nth=0")
    assert order() == ["s4", "s1", "s3", "s2"]
    page.get_by_role("button", name="Save draft").click()
    page.locator(".wf-messages .success").wait_for()
    workflow.refresh_from_db()
    assert [step["id"] for step in workflow.definition["steps"]] == ["s4", "s1", "s3", "s2"]
    assert (workflow.status, workflow.has_unpublished_changes) == ("active", True)

    # then the versions page lists v1 and v2; v1 opens read-only and is restored as a draft
    page.get_by_role("link", name="Versions").click()
    assert page.locator("#wf-versions tbody tr").evaluate_all("rows => rows.map(r => r.dataset.version)") == ["2", "1"]
    page.locator("tr[data-version='1']").get_by_role("link", name="View").click()
    page.locator("#wf-builder[data-ready]").wait_for()
    assert page.locator(".wf-flow .wf-add").count() == 0
    assert order() == ["s1", "s2", "s3"]
    shoot(page, screenshot, "version-read-only")
    page.get_by_role("button", name="Restore this version as a draft").click()
    page.wait_for_url(BUILDER_URL)
    workflow.refresh_from_db()
    assert workflow.definition == first
    assert (workflow.status, workflow.current_version.number, workflow.has_unpublished_changes) == ("active", 2, True)
