"""The console's CSV import: upload (capped), preview with a guessed mapping, background import, per-row errors."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.customers.models import Customer, ExchangeRate
from apps.tagging.choices import ImportStatus
from apps.tagging.imports import rows as csv_rows
from apps.tagging.models import CustomerTag, ImportJob
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# A file exported from another tool: its own header names, one bad row (line 3) and one empty line.
CUSTOMERS = (
    "Customer ID,E-mail,First name,Country,Tags,Notes\n"
    "c-1,ana@example.com,Ana,PT,VIP;Parent,first\n"
    "c-2,not-an-email,Bob,US,,second\n"
    "\n"
    "c-3,carl@example.com,Carl,DE,,third\n"
)


def _role(name: str, username: str):
    user = UserFactory(username=username, is_superuser=False)
    user.groups.add(Group.objects.get(name=name))
    return user


def _upload(client, kind: str, text: str, name: str = "export.csv"):
    return client.post(
        reverse("tagging-import"), {"kind": kind, "file": SimpleUploadedFile(name, text.encode(), "text/csv")}
    )


def test_the_mapping_is_guessed_from_the_header_names_of_other_tools():
    assert csv_rows.mapping_guess("customers", ["Customer ID", "E-mail", "First name", "Country", "Tags", "Notes"]) == {
        "Customer ID": "external_id",
        "E-mail": "email",
        "First name": "first_name",
        "Country": "country",
        "Tags": "tags",
        "Notes": "",
    }
    # A column is guessed once: the second "email" is left for the marketer to choose.
    assert csv_rows.mapping_guess("customers", ["email", "Email address"]) == {"email": "email", "Email address": ""}


def test_a_marketer_uploads_previews_maps_and_imports_with_per_row_errors(
    client, settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    client.force_login(_role("marketer", "mia"))

    uploaded = _upload(client, "customers", CUSTOMERS)
    job = ImportJob.objects.get()
    assert uploaded.status_code == 302 and uploaded["Location"] == reverse("tagging-import-detail", args=[job.pk])
    assert job.status == ImportStatus.DRAFT and Customer.objects.count() == 0

    preview = client.get(uploaded["Location"])
    assert preview.status_code == 200
    assert [line for line, _values in preview.context["preview"]] == [2, 3, 5]
    assert {c["name"]: c["target"] for c in preview.context["header"]}["Customer ID"] == "external_id"
    assert b'name="mapping.Notes"' in preview.content

    mapping = {f"mapping.{c['name']}": c["target"] for c in preview.context["header"]}
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(uploaded["Location"], mapping)
    assert started.status_code == 302

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.rows_total, job.written, job.rejected_count) == (3, 2, 1)
    assert job.errors == [{"line": 3, "column": "E-mail", "message": "Enter a valid email address."}]
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["c-1", "c-3"]
    assert CustomerTag.objects.filter(customer__external_id="c-1", source="import").count() == 2
    page = client.get(uploaded["Location"])
    assert b"Enter a valid email address." in page.content and b'data-testid="import-errors"' in page.content

    status = client.get(reverse("tagging-import-status", args=[job.pk])).json()
    assert status["status"] == "done" and status["percent"] == 100 and status["done"] == 2


def test_a_mapping_without_the_required_column_is_a_400_naming_it_and_nothing_is_queued(client, settings):
    settings.TASKS_SYNC = True
    client.force_login(_role("marketer", "mia"))
    _upload(client, "customers", CUSTOMERS)
    job = ImportJob.objects.get()

    response = client.post(
        reverse("tagging-import-detail", args=[job.pk]), {"mapping.Customer ID": "", "mapping.E-mail": "email"}
    )

    assert response.status_code == 400
    assert response.context["errors"] == {"mapping": "Choose a column for: external_id."}
    job.refresh_from_db()
    assert job.status == ImportStatus.DRAFT and Customer.objects.count() == 0

    doubled = client.post(
        reverse("tagging-import-detail", args=[job.pk]),
        {"mapping.Customer ID": "external_id", "mapping.E-mail": "email", "mapping.Notes": "email"},
    )
    assert doubled.status_code == 400
    assert doubled.context["errors"] == {"mapping.Notes": "“email” is chosen for two columns."}


def test_an_oversized_file_is_refused_before_it_is_read(client, settings):
    settings.CSV_IMPORT_MAX_BYTES = 1024
    client.force_login(_role("marketer", "mia"))

    response = _upload(client, "customers", "external_id\n" + "c-1\n" * 400)

    assert response.status_code == 400
    assert response.context["errors"] == {"file": "The file is larger than 1 KB: split it."}
    assert ImportJob.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe\x00e\x00x", "The file is not UTF-8 text: save it as “CSV UTF-8”."),
        (b"\n\n", "The file is empty: its first line must name the columns."),
    ],
)
def test_a_file_that_is_not_csv_text_is_a_400_on_the_file_input(client, raw, message):
    client.force_login(_role("marketer", "mia"))
    response = client.post(
        reverse("tagging-import"), {"kind": "customers", "file": SimpleUploadedFile("x.csv", raw, "text/csv")}
    )
    assert response.status_code == 400
    assert response.context["errors"] == {"file": message}
    assert ImportJob.objects.count() == 0


def test_an_unknown_kind_is_a_400_on_the_kind_input(client):
    client.force_login(_role("marketer", "mia"))
    response = _upload(client, "coupons", CUSTOMERS)
    assert response.status_code == 400 and list(response.context["errors"]) == ["kind"]
    assert ImportJob.objects.count() == 0


def test_support_and_analysts_may_read_imports_but_not_upload_or_start_one(client, settings):
    settings.TASKS_SYNC = True
    client.force_login(_role("marketer", "mia"))
    _upload(client, "customers", CUSTOMERS)
    job = ImportJob.objects.get()

    for role in ("support", "analyst"):
        client.force_login(_role(role, f"{role}-1"))
        listing = client.get(reverse("tagging-import"))
        assert listing.status_code == 200 and listing.context["kinds"] == []
        assert _upload(client, "customers", CUSTOMERS).status_code == 403
        refused = client.post(reverse("tagging-import-detail", args=[job.pk]), {"mapping.Customer ID": "external_id"})
        assert refused.status_code == 403

    assert ImportJob.objects.count() == 1
    job.refresh_from_db()
    assert job.status == ImportStatus.DRAFT and Customer.objects.count() == 0


def test_a_user_without_a_role_cannot_see_the_import_pages(client):
    client.force_login(UserFactory(username="nobody", is_superuser=False))
    assert client.get(reverse("tagging-import")).status_code == 403
    assert _upload(client, "customers", CUSTOMERS).status_code == 403
    assert ImportJob.objects.count() == 0


def test_exchange_rates_import_in_the_background_and_a_second_delivery_does_nothing(client, settings):
    from apps.tagging.imports import services

    client.force_login(_role("marketer", "mia"))
    _upload(client, "exchange_rates", "Date,Code,Rate\n2026-11-01,EUR,1.08\n2026-11-01,QQQ,2\n")
    job = ImportJob.objects.get()
    assert job.mapping == {"Date": "day", "Code": "currency", "Rate": "rate"}
    client.post(reverse("tagging-import-detail", args=[job.pk]), {f"mapping.{k}": v for k, v in job.mapping.items()})
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED  # the worker's turn (no TASKS_SYNC here)

    services.import_job_run(job_id=job.pk)
    services.import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.written, job.rejected_count) == (ImportStatus.DONE, 1, 1)
    assert [(e["line"], e["column"]) for e in job.errors] == [(3, "Code")]
    assert ExchangeRate.objects.filter(currency="EUR", day="2026-11-01").get().rate == Decimal("1.08")
