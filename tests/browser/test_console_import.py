"""The console's CSV import in Chromium: a marketer uploads a file with a bad row, checks the mapping, follows
the progress bar and reads the rejected row with its line and column (1440 and 390 px, no sideways scroll)."""

import pytest
from django.contrib.auth.models import Group

from apps.customers.models import Customer
from apps.tagging.imports import services
from apps.tagging.models import ImportJob
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
CSV = (
    "Customer ID,E-mail,First name,Country,Tags,A very long column name nobody maps\n"
    "c-1,ana@example.com,Ana,PT,VIP;Parent,first row of an export with a long note that must wrap\n"
    "c-2,not-an-email,Bob,US,,second\n"
    "c-3,carl@example.com,Carl,DE,,third\n"
)


def log_in(page, live_server, user):
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("pass12345")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")


def at_both_widths(page, screenshot, name):
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), (name, width)
        screenshot(f"{name}-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})


def test_a_csv_import_with_a_bad_row_from_upload_to_the_rejected_row(live_server, page, screenshot):
    marketer = UserFactory(username="mia", is_superuser=False)
    marketer.groups.add(Group.objects.get(name="marketer"))
    log_in(page, live_server, marketer)

    page.get_by_role("link", name="Customers", exact=True).first.click()
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("The file holds").select_option("customers")
    page.get_by_label("CSV file").set_input_files(
        {"name": "export.csv", "mimeType": "text/csv", "buffer": CSV.encode()}
    )
    page.get_by_role("button", name="Upload and preview").click()

    preview = page.get_by_test_id("import-preview")
    preview.wait_for()
    assert preview.locator("tbody tr").count() == 3
    assert page.get_by_label("“E-mail” imports as").input_value() == "email"
    assert page.get_by_label("“Customer ID” imports as").input_value() == "external_id"
    assert page.get_by_label("“A very long column name nobody maps” imports as").input_value() == ""
    at_both_widths(page, screenshot, "csv-import-preview")

    page.get_by_role("button", name="Start the import").click()
    bar = page.locator("#import-progress")
    bar.wait_for()
    assert Customer.objects.count() == 0
    job = ImportJob.objects.get()
    services.import_job_run(job_id=job.pk)  # the worker's part, while the page is open

    errors = page.get_by_test_id("import-errors")
    errors.wait_for(timeout=20_000)
    assert page.get_by_test_id("import-written").inner_text() == "2"
    assert page.get_by_test_id("import-rejected").inner_text() == "1"
    assert errors.locator("tbody tr").all_inner_texts() == ["3\tE-mail\tEnter a valid email address."]
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["c-1", "c-3"]
    at_both_widths(page, screenshot, "csv-import-outcome")


def test_an_analyst_reads_the_imports_but_gets_no_upload_form(live_server, page):
    analyst = UserFactory(username="ann", is_superuser=False)
    analyst.groups.add(Group.objects.get(name="analyst"))
    log_in(page, live_server, analyst)

    page.goto(live_server.url + "/admin/tagging/imports/")
    assert page.get_by_test_id("import-not-allowed").is_visible()
    assert page.get_by_label("CSV file").count() == 0
