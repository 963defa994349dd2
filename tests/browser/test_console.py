"""The console in Chromium: the customer 360° page and the builder's activate button by role (1440 and 390 px)."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from apps.tagging.services import tags_add
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def log_in(page, live_server, user):
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pass12345")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")


def test_customer_360_reads_at_desktop_and_phone_width(live_server, page, screenshot):
    customer = CustomerFactory(
        email="grace.hopper@example.com",
        first_name="Grace",
        last_name="Hopper",
        country="US",
        attributes={"vip": "yes"},
    )
    for total in ("120.00", "89.90"):
        make_order(customer, total=total)
    tags_add(customer=customer, names=["VIP", "Newsletter"], source="workflow", source_ref="bulk_run:41")
    log_in(page, live_server, UserFactory(username="root"))

    page.goto(f"{live_server.url}/admin/customers/customer/")
    page.get_by_role("link", name="View", exact=True).first.click()
    page.wait_for_url(f"{live_server.url}/admin/console/customers/{customer.pk}/")

    assert page.get_by_role("heading", name="Grace Hopper").is_visible()
    assert page.get_by_test_id("tags").locator("li").count() == 2
    assert page.locator("[data-ref='bulk_run:41']").first.inner_text() == "Bulk run #41 (deleted)"
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"customer-360-{width}")


def test_the_builder_offers_activate_only_to_who_may_activate(live_server, page):
    from apps.automations.services import workflow_create

    workflow = workflow_create(
        name="Tag VIPs",
        definition={
            "schema": 1,
            "trigger": {"event": "order.created"},
            "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["VIP"]}}],
        },
    )
    analyst = UserFactory(username="analyst-1", is_superuser=False)
    analyst.groups.add(Group.objects.get(name="analyst"))
    log_in(page, live_server, analyst)

    page.goto(f"{live_server.url}/admin/automations/builder/{workflow.pk}/")
    page.locator(".wf-toolbar").wait_for()
    assert page.locator("#wf-activate").count() == 0
    refused = page.request.post(
        f"{live_server.url}/admin/automations/builder/{workflow.pk}/activate/",
        headers={"X-CSRFToken": page.context.cookies()[0]["value"] if page.context.cookies() else ""},
    )
    assert refused.status == 403
    workflow.refresh_from_db()
    assert workflow.status == "draft"


def test_a_bulk_run_page_refreshes_while_it_runs_and_lists_who_it_tagged(live_server, page, screenshot):
    from apps.automations import bulk
    from apps.automations.services import workflow_activate, workflow_create

    for index in range(3):
        CustomerFactory(email=f"sleeper{index}@example.com")
    workflow = workflow_activate(
        workflow=workflow_create(
            name="Tag everyone",
            definition={
                "schema": 1,
                "trigger": {"event": "customer.bulk_activity"},
                "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["Sleeper"]}}],
            },
        )
    )
    run = bulk.bulk_run_start(workflow=workflow, user=None, enqueue=False)
    log_in(page, live_server, UserFactory(username="root"))

    page.goto(f"{live_server.url}/admin/automations/runs/{run.pk}/")
    assert page.locator("#wf-run-refresh").is_visible()
    assert "customers in the audience" in page.locator(".wf-legend").inner_text()
    for index in range(run.progress["chunks_total"]):  # the worker's part, done while the page is open
        bulk.bulk_chunk_process(run_id=run.pk, index=index)

    page.wait_for_function("() => !document.getElementById('wf-run-refresh')", timeout=20_000)
    rows = page.locator("#touched-customers tbody tr")
    assert rows.count() == 3
    page.get_by_label("Search").fill("sleeper1")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#touched-customers tbody tr")).to_have_count(1)  # waits for the search reply
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "customer_id,external_id,email,action,tag,at" and len(lines) == 2
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"bulk-run-{width}")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/loyalty/program/{program}/change/",
        "/admin/loyalty/tier/",
        "/admin/loyalty/earningrule/",
        "/admin/loyalty/reward/",
        "/admin/loyalty/scan/",
    ],
)
def test_loyalty_pages_fit_a_phone_and_a_desktop(live_server, page, screenshot, path):
    from apps.loyalty.models import Program, Tier

    program = Program.objects.create(name="Rewards club", slug="rewards-club")
    for rank, (name, threshold) in enumerate([("Bronze", 0), ("Silver", 500), ("Gold", 1500)], start=1):
        Tier.objects.create(program=program, name=name, rank=rank, threshold=threshold)
    log_in(page, live_server, UserFactory(username="root"))

    url = live_server.url + path.format(program=program.pk)
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(url)
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), (path, width)
        screenshot(f"loyalty-{path.strip('/').split('/')[2]}-{width}")
