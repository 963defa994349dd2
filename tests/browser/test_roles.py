"""Per role, in a real Chromium: which console pages a user may open, and which are refused or not offered."""

import pytest
from django.contrib.auth.models import Group

from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass12345"

# page → the roles that may open it (every other role gets 403)
PAGES = {
    "/admin/customers/customer/": {"analyst", "marketer", "support", "admin"},
    "/admin/automations/builder/": {"analyst", "marketer", "support", "admin"},
    "/admin/automations/builder/new/": {"analyst", "marketer", "support", "admin"},
    "/admin/loyalty/program/add/": {"marketer", "admin"},
    "/admin/loyalty/scan/": {"support", "admin"},
    "/admin/campaigns/segment/": {"analyst", "marketer", "admin"},
    "/admin/platform/auditentry/": {"analyst", "marketer", "admin"},
    "/admin/platform/apitoken/": {"admin"},
    "/admin/auth/user/": {"admin"},
    "/admin/system/": {"admin"},
    "/admin/": {"analyst", "marketer", "support", "admin"},
    "/admin/tagging/imports/": {"analyst", "marketer", "support", "admin"},
    "/admin/campaigns/fraudrule/add/": {"marketer", "admin"},
}
# section of the console's navigation → the roles that see it
NAVIGATION = {
    "Home": {"analyst", "marketer", "support", "admin"},
    "Automations": {"analyst", "marketer", "support", "admin"},
    "Loyalty": {"analyst", "marketer", "support", "admin"},
    "Campaigns": {"analyst", "marketer", "admin"},
    "Segments": {"analyst", "marketer", "admin"},
    "Customers": {"analyst", "marketer", "support", "admin"},
    "Reports": {"analyst", "marketer", "admin"},
    "Scan": {"support", "admin"},
    "System": {"admin"},
}
NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def _log_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")


@pytest.mark.parametrize("role", ["analyst", "marketer", "support", "admin"])
def test_each_role_opens_its_console_pages_and_no_others(role, live_server, page, screenshot):
    user = UserFactory(username=f"{role}-1", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    _log_in(page, live_server, user.username)

    sections = page.get_by_role("navigation", name="Console").locator(".console-sections")
    seen = {name: sections.get_by_role("link", name=name, exact=True).count() > 0 for name in NAVIGATION}
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"console-home-{role}-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})
    answers = {path: page.goto(live_server.url + path).status for path in PAGES}

    assert seen == {name: role in roles for name, roles in NAVIGATION.items()}
    assert answers == {path: 200 if role in roles else 403 for path, roles in PAGES.items()}


def test_a_staff_user_without_a_role_sees_no_model_and_opens_nothing(live_server, page):
    UserFactory(username="staff-only", is_staff=True, is_superuser=False)
    _log_in(page, live_server, "staff-only")

    assert page.locator("#content-main table").count() == 0
    assert page.locator(".console-sections a").all_inner_texts() == ["Home"]
    answers = {path: page.goto(live_server.url + path).status for path in PAGES if path != "/admin/"}
    assert set(answers.values()) == {403}


@pytest.mark.parametrize(
    ("role", "may_upload"), [("analyst", False), ("marketer", True), ("support", False), ("admin", True)]
)
def test_each_role_finds_the_csv_import_and_only_importers_get_the_upload_form(
    role, may_upload, live_server, page, screenshot
):
    user = UserFactory(username=f"{role}-2", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    _log_in(page, live_server, user.username)

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Customers", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("link", name="Import CSV").click()

    assert page.get_by_label("CSV file").count() == (1 if may_upload else 0)
    assert page.get_by_test_id("import-not-allowed").count() == (0 if may_upload else 1)
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"csv-import-{role}-{width}")
