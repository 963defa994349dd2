"""
A marketer installs the spend tiers (state tags) from the gallery and sees, in a real Chromium, which kind each
workflow is and how many customers carry each tier now — on the gallery, the workflow list and the builder,
at 1440 px and 390 px (the gallery without horizontal overflow).
"""

import re

import pytest

from tests.factories import CustomerFactory, make_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUILDER_URL = re.compile(r"/admin/automations/builder/\d+/$")
NO_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


@pytest.mark.parametrize("width", [1440, 390])
def test_spend_tiers_show_their_kind_and_carriers(live_server, logged_in, sync_worker, screenshot, width):
    from apps.automations.models import Workflow

    page = logged_in
    page.set_viewport_size({"width": width, "height": 900})
    for total in ("1500.00", "1200.00", "400.00"):
        make_order(CustomerFactory(), total=total)

    page.goto(live_server.url + "/admin/automations/gallery/")
    card = page.locator("#template-spend_tiers")
    assert card.locator("[data-kind]").inner_text() == "State tag"
    assert page.locator("#template-first_time_buyer [data-kind]").inner_text() == "On an event"
    card.get_by_text("Customise & install").click()
    card.get_by_role("button", name="Install").click()
    page.wait_for_url(BUILDER_URL)
    for workflow in Workflow.objects.order_by("pk"):  # activate the three tiers (recomputed at once)
        page.goto(f"{live_server.url}/admin/automations/builder/{workflow.pk}/")
        page.get_by_role("button", name="Activate").click()
        page.get_by_text("is live").wait_for()

    page.goto(live_server.url + "/admin/automations/gallery/")
    installed = page.locator("#template-spend_tiers .wf-installed li").all_inner_texts()
    assert [text.split(" · ")[-1] for text in installed] == [
        "2 customers carry it now",
        "1 customer carries it now",
        "0 customers carry it now",
    ]
    assert page.evaluate(NO_OVERFLOW)
    screenshot(f"state-tags-gallery-{width}")

    page.goto(live_server.url + "/admin/automations/builder/")
    high = Workflow.objects.order_by("pk").first()
    row = page.locator(f"tr[data-workflow='{high.pk}']")
    assert "State tag" in row.inner_text() and "2 carry it" in row.inner_text()
    # (the workflow list's seven-column table is wider than a phone already on main: not asserted here)
    screenshot(f"state-tags-list-{width}")

    page.goto(f"{live_server.url}/admin/automations/builder/{high.pk}/")
    assert page.locator(".wf-state-carriers").inner_text() == "2 customers carry “High value” now"
    # (the builder's own layout is wider than a 390 px phone already on main: not asserted here)
    screenshot(f"state-tags-builder-{width}")
