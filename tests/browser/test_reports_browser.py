"""Reports in Chromium: the dashboard with its charts and date range, a CSV export, a split step's report and
its card in the builder — at 1440 px and 390 px, with no horizontal overflow, also with every table open and long
workflow and campaign names (a wide table scrolls inside its card, not the page)."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from apps.automations import services as workflow_services
from apps.automations.choices import HELD_OUT
from apps.automations.models import Workflow, WorkflowRun, WorkflowRunStep
from apps.campaigns.models import Campaign, CampaignHoldout, Code
from apps.customers import services as customer_services
from apps.customers.messaging.models import Delivery
from apps.customers.services import LineInput
from apps.reports import services as report_services
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1440, 390)


def no_horizontal_overflow(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


OUTSIDE = """(selector) => [...document.querySelectorAll(selector)]
  .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def nothing_outside(page, selector):
    outside = page.evaluate(OUTSIDE, selector)
    assert outside == [], outside


def shoot_widths(page, screenshot, name, *, within=None):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)  # Chart.js redraws on resize
        if within:
            # the builder's own toolbar is wider than a phone already (not this page's concern): the card must fit
            nothing_outside(page, within)
        else:
            no_horizontal_overflow(page)
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(f"{name}-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})


def order_placed(person, price: int, placed_at) -> None:
    """One order of one item at `price` dollars."""
    customer_services.order_create(
        customer=person,
        currency="USD",
        lines=[LineInput(title="Item", quantity=1, unit_price=price)],
        placed_at=placed_at,
    )


def orders_over_the_last_days():
    today = timezone.now()
    people = [CustomerFactory() for _ in range(5)]
    for day in range(12):
        for index, person in enumerate(people[: 1 + day % 5]):
            order_placed(person, 10 + index * 7 + day, today - timedelta(days=day, hours=1))
    report_services.rollups_refresh()


def split_workflow_with_runs(name: str) -> Workflow:
    """
    An A/B split (Coupon, Reminder) with a 10 % holdout, run 5 days ago: 60 customers down each branch and 40 held
    out, of whom 24, 12 and 6 ordered the next day.
    """
    steps = [
        {
            "id": "ab",
            "split": [
                {
                    "name": "Coupon",
                    "percent": 50,
                    "steps": [{"id": "t1", "action": "customer.add_tags", "params": {"tags": ["Coupon"]}}],
                },
                {"name": "Reminder", "percent": 50, "steps": []},
            ],
        }
    ]
    workflow = workflow_services.workflow_create(
        name=name,
        definition={"schema": 1, "trigger": {"event": "event.custom"}, "steps": steps},
        holdout_percent=10,
    )
    started = timezone.now() - timedelta(days=5)
    for group, size, converters in (("Coupon", 60, 24), ("Reminder", 60, 12), ("holdout", 40, 6)):
        for index in range(size):
            person = CustomerFactory()
            run = WorkflowRun.objects.create(
                workflow=workflow,
                kind="event",
                customer=person,
                status="skipped" if group == "holdout" else "succeeded",
                skip_reason=HELD_OUT if group == "holdout" else "",
                created_at=started,
            )
            if group != "holdout":
                WorkflowRunStep.objects.create(
                    run=run, path="steps[0]", step_id="ab", kind="split", status="succeeded", branch=group
                )
            if index < converters:
                order_placed(person, 40, started + timedelta(days=1))
    return workflow


def campaign_with_holdout_and_codes(name: str) -> Campaign:
    """
    A campaign with a 20 % holdout: codes published 6 days ago to 80 customers and 40 held out, of whom 32 and 6
    ordered two days later.
    """
    campaign = campaign_with(name, holdout_percent=20, incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    exposed_at = timezone.now() - timedelta(days=6)
    for held, size, converters in ((False, 80, 32), (True, 40, 6)):
        for index in range(size):
            person = CustomerFactory()
            if held:
                CampaignHoldout.objects.create(campaign=campaign, customer=person, held_out_at=exposed_at)
            else:
                Code.objects.create(
                    campaign=campaign, code=f"SPRING-{person.pk}", customer=person, published_at=exposed_at
                )
            if index < converters:
                order_placed(person, 30, exposed_at + timedelta(days=2))
    return campaign


def test_dashboard_charts_date_range_and_a_csv_export(live_server, logged_in, screenshot):
    page = logged_in
    orders_over_the_last_days()
    page.goto(live_server.url + "/admin/reports/")
    assert page.locator("canvas[data-drawn=true]").count() >= 3
    assert page.locator(".rp-figure[data-key=revenue_non_members] .rp-figure-value").inner_text().startswith("$")
    shoot_widths(page, screenshot, "reports-dashboard")

    start = (timezone.localdate() - timedelta(days=6)).isoformat()
    page.locator("input[name=start]").fill(start)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**start={start}**")
    assert page.locator("table[data-table=daily] tbody tr").count() == 7
    assert page.locator("canvas[data-drawn=true]").count() >= 3

    page.locator("#table-daily summary").click()
    with page.expect_download() as download:
        page.locator("#table-daily summary a").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith("Day,")
    assert len(lines) == 8
    assert lines[1].split(",")[0] == start

    page.goto(live_server.url + "/admin/reports/loyalty/")
    shoot_widths(page, screenshot, "reports-loyalty")
    page.goto(live_server.url + "/admin/reports/cohorts/")
    assert page.locator("canvas[data-drawn=true]").count() == 1


def test_the_console_home_shows_the_dashboard_with_its_charts(live_server, logged_in, screenshot):
    page = logged_in
    orders_over_the_last_days()

    page.goto(live_server.url + "/admin/")

    home = page.locator("[data-testid=home-dashboard]")
    assert home.locator("canvas[data-drawn=true]").count() >= 3
    assert home.locator(".rp-figure[data-key=revenue_non_members] .rp-figure-value").inner_text().startswith("$")
    assert page.locator(".console-tiles, .console-columns").count() >= 1  # the live overview stays below
    shoot_widths(page, screenshot, "console-home-dashboard")
    # the date range opens the full dashboard for the chosen days
    start = (timezone.localdate() - timedelta(days=6)).isoformat()
    home.locator("input[name=start]").fill(start)
    home.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/admin/reports/?start={start}**")
    assert page.locator("table[data-table=daily] tbody tr").count() == 7


def test_a_split_steps_report_and_its_card_in_the_builder(live_server, logged_in, screenshot):
    page = logged_in
    workflow = split_workflow_with_runs("Win-back A/B")
    report_services.rollups_refresh()

    page.goto(live_server.url + "/admin/reports/workflows/")
    page.get_by_label("Workflow").select_option(str(workflow.pk))
    page.get_by_role("button", name="Show").click()
    lift = page.get_by_test_id("lift")
    assert "Branch Coupon converts 25.0 points better than the holdout" in lift.inner_text()
    assert "significant" in lift.inner_text()
    assert page.locator("table[data-table=conversions] tbody tr").count() == 3
    assert page.locator("canvas[data-drawn=true]").count() >= 2
    shoot_widths(page, screenshot, "reports-split-lift")

    page.goto(live_server.url + f"/admin/automations/builder/{workflow.pk}/")
    card = page.locator(".wf-card-split")
    assert card.locator(":scope > header .wf-card-summary").inner_text() == "Coupon 50 % · Reminder 50 %"
    assert card.locator(".wf-split-branch").count() == 2
    assert card.get_by_label("Branch 2 name").input_value() == "Reminder"
    shoot_widths(page, screenshot, "builder-split", within=".wf-card-split, .wf-card-split *")


def test_a_campaigns_lift_on_the_campaign_report(live_server, logged_in, screenshot):
    page = logged_in
    campaign = campaign_with_holdout_and_codes("Spring sale")
    report_services.rollups_refresh()

    page.goto(live_server.url + "/admin/reports/campaigns/")
    page.get_by_test_id("campaign").select_option(str(campaign.pk))
    page.get_by_test_id("window").fill("7")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert f"campaign={campaign.pk}" in page.url
    lift = page.get_by_test_id("lift")
    assert "Treated customers convert 25.0 points better than the holdout" in lift.inner_text()
    assert ": significant." in lift.inner_text()
    rows = page.locator("table[data-table=conversions] tbody tr")
    assert [rows.nth(i).locator("td").first.text_content() for i in range(rows.count())] == ["Holdout", "Treated"]
    assert page.locator("canvas[data-drawn=true]").count() >= 3
    shoot_widths(page, screenshot, "reports-campaign-lift")

    page.locator("#table-lift summary").click()
    with page.expect_download() as download:
        page.locator("#table-lift summary a").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Group,Against,Conversion difference (points)")
    assert lines[1].startswith("Treated,Holdout,25.0,")


LONG_WORKFLOW = "Win-back for lapsed VIP customers after ninety days without an order (A/B)"
LONG_CAMPAIGN = "Spring sale for members who have not redeemed a reward this year"
OPEN_TABLES = "document.querySelectorAll('details.rp-table').forEach((table) => { table.open = true; })"
PAGE_FITS = "document.documentElement.scrollWidth <= window.innerWidth"
SCROLLING_TABLES = """[...document.querySelectorAll('.rp-scroll')]
  .filter((scroller) => scroller.scrollWidth > scroller.clientWidth)
  .map((scroller) => scroller.querySelector('table').dataset.table)"""


def messages_before_the_orders(workflow: Workflow, campaign: Campaign) -> None:
    """A message from the workflow to the customer of each of its succeeded runs, and from the campaign to each code
    holder, sent when they were exposed: the orders they placed after it are attributed to the sender."""
    sent = [
        (f"run-{run.pk}", run.customer, run.created_at, f"workflow_run:{run.pk}")
        for run in WorkflowRun.objects.filter(workflow=workflow, status="succeeded")
    ] + [
        (f"code-{code.pk}", code.customer, code.published_at, f"campaign:{campaign.pk}")
        for code in Code.objects.filter(campaign=campaign)
    ]
    Delivery.objects.bulk_create(
        Delivery(
            key=key,
            channel="email",
            customer=who,
            to="member@example.com",
            status="sent",
            sent_at=at,
            cause=cause,
            created_at=at,
        )
        for key, who, at, cause in sent
    )


def test_every_report_with_its_tables_open_fits_a_phone_its_wide_tables_scroll_in_their_card(
    live_server, logged_in, screenshot
):
    page = logged_in
    orders_over_the_last_days()
    workflow = split_workflow_with_runs(LONG_WORKFLOW)
    campaign = campaign_with_holdout_and_codes(LONG_CAMPAIGN)
    messages_before_the_orders(workflow, campaign)
    report_services.rollups_rebuild()  # (the codes are back-dated: an incremental refresh looks only at new ones)
    # path, the tables that must have rows, the one wider than a phone (it scrolls inside its card)
    reports = {
        "dashboard": ("/admin/reports/", ["daily"], "daily"),
        "workflows": ("/admin/reports/workflows/", ["workflows", "runs", "messages"], "messages"),
        "campaigns": ("/admin/reports/campaigns/", ["messages"], "messages"),
        "workflow-lift": (
            f"/admin/reports/workflows/?workflow={workflow.pk}",
            ["workflows", "messages", "branches", "conversions", "lift"],
            "lift",
        ),
        "campaign-lift": (
            f"/admin/reports/campaigns/?campaign={campaign.pk}",
            ["messages", "conversions", "lift"],
            "lift",
        ),
    }

    for name, (path, filled, wide) in reports.items():
        page.goto(live_server.url + path)
        page.evaluate(OPEN_TABLES)
        for table in filled:  # data in the tables that matter, not "Nothing in this period yet."
            assert page.locator(f"table[data-table={table}] tbody tr td.rp-number").count() >= 1, (name, table)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(150)  # Chart.js redraws on resize
            assert page.evaluate(PAGE_FITS), (name, width, page.evaluate("document.documentElement.scrollWidth"))
            page.evaluate("window.scrollTo(0, 0)")
            screenshot(f"reports-tables-open-{name}-{width}")
        assert wide in page.evaluate(SCROLLING_TABLES), name  # (at 390 px)
        page.set_viewport_size({"width": 1440, "height": 900})
