"""
Console pages at a phone's width (issue 15, "pages not finished"): the workflow list (run counters with a
legend, times with their zone), the builder, and the program, tier, earning rule and reward pages — at 1440
and 390 px with no horizontal scrollbar (asserted), screenshots written as test artifacts.
"""

from decimal import Decimal

import pytest

from apps.automations.services import workflow_activate, workflow_create
from apps.loyalty.models import EarningRule, Reward, Tier
from tests.factories import UserFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def log_in(page, live_server, user):
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pass12345")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")


OFFENDERS = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== "visible") return true; } return false; };
  return [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 1 && !e.closest("table"))
    .slice(0, 5).map((e) => `${e.tagName}.${e.className}#${e.id}`);
}"""


def fits(page, screenshot, name):
    """No horizontal scrollbar at 1440 and 390 px (the offending elements are named on failure); screenshots."""
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), (name, width, page.evaluate(OFFENDERS))
        screenshot(f"{name}-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})


@pytest.fixture
def workflow(db):
    return workflow_activate(
        workflow=workflow_create(
            name="Welcome first-time buyers with a tag and fifty points",
            definition={
                "schema": 1,
                "trigger": {"event": "order.created"},
                "steps": [
                    {
                        "id": "s1",
                        "if": {"field": "customer.orders_count", "op": "eq", "value": 1},
                        "then": [{"id": "s2", "action": "customer.add_tags", "params": {"tags": ["First-time buyer"]}}],
                        "else": [{"id": "s3", "action": "customer.add_tags", "params": {"tags": ["Repeat buyer"]}}],
                    }
                ],
            },
        )
    )


def test_the_workflow_list_explains_its_counters_and_fits_a_phone(live_server, page, screenshot, workflow):
    log_in(page, live_server, UserFactory(username="root"))
    page.goto(live_server.url + "/admin/automations/builder/")

    legend = page.locator("#wf-runs-legend").inner_text()
    assert "succeeded" in legend and "skipped" in legend and "failed" in legend
    counters = page.locator(f"tr[data-workflow='{workflow.pk}'] .wf-counts a")
    assert counters.get_attribute("aria-label") == "0 succeeded, 0 skipped, 0 failed in the last 7 days"
    fits(page, screenshot, "workflow-list")

    page.get_by_role("link", name=workflow.name).click()
    page.locator(".wf-toolbar").wait_for()
    fits(page, screenshot, "builder")


def test_program_tier_rule_and_reward_pages_fit_a_phone(live_server, page, screenshot):
    program = program_make(name="Coffee Club")
    tier = Tier.objects.create(program=program, name="Gold", rank=2, threshold=Decimal("500"))
    rule = EarningRule.objects.create(
        program=program,
        name="Double points on weekend orders over fifty dollars",
        kind="per_amount",
        points=Decimal("2"),
        conditions={"field": "order.total", "op": "gt", "value": 50},
    )
    reward = Reward.objects.create(
        program=program, name="Five off", kind="fixed_discount", value=Decimal("5"), points_cost=200
    )
    log_in(page, live_server, UserFactory(username="root"))

    for name, path in [
        ("program-list", "/admin/loyalty/program/"),
        ("program", f"/admin/loyalty/program/{program.pk}/change/"),
        ("tier-list", "/admin/loyalty/tier/"),
        ("tier", f"/admin/loyalty/tier/{tier.pk}/change/"),
        ("rule-list", "/admin/loyalty/earningrule/"),
        ("rule", f"/admin/loyalty/earningrule/{rule.pk}/change/"),
        ("reward-list", "/admin/loyalty/reward/"),
        ("reward", f"/admin/loyalty/reward/{reward.pk}/change/"),
    ]:
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        fits(page, screenshot, f"loyalty-{name}")
