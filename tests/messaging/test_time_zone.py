"""
Customer.time_zone: an IANA name validated with zoneinfo (blank: the sending policy's default), set through
the API, the CSV import and the admin, shown on the customer page, moved from `attributes.time_zone` by a
migration, and the zone quiet hours are computed in.
"""

import contextlib
import re
from datetime import UTC, datetime, time
from importlib import import_module
from io import StringIO

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from apps.customers.messaging import services
from apps.customers.messaging.models import SendingPolicy
from apps.customers.messaging.services import Content
from apps.customers.models import Customer
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

migration = import_module("apps.customers.migrations.0016_customer_time_zone_delivery_tracking")
EVENING_UTC = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)  # 18:00 in New York, 00:00 in Paris


def quiet_email_policy() -> None:
    policy = SendingPolicy.current()
    policy.quiet_hours_start, policy.quiet_hours_end = time(21, 0), time(8, 0)
    policy.quiet_hours_email, policy.default_time_zone = True, "Europe/Paris"
    policy.save()


def mail(customer, key):
    with time_machine.travel(EVENING_UTC, tick=False):
        return services.message_send(
            key=key, channel="email", purpose="marketing", customer=customer, content=Content(subject=key, text=key)
        )


def user_in(group: str, username: str):
    user = UserFactory(username=username, is_superuser=False, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


# --- quiet hours ---------------------------------------------------------------------------------------


def test_quiet_hours_are_computed_in_the_customers_time_zone_field():
    quiet_email_policy()
    new_yorker = CustomerFactory(time_zone="America/New_York", accepts_marketing=True)
    parisian = CustomerFactory(time_zone="", accepts_marketing=True)  # blank: the policy's default

    assert mail(new_yorker, "ny").status == "sent"
    paris = mail(parisian, "paris")
    assert (paris.status, paris.reason, paris.send_after) == (
        "queued",
        "quiet_hours",
        datetime(2026, 6, 2, 6, 0, tzinfo=UTC),
    )


def test_the_old_attribute_is_no_longer_read():
    quiet_email_policy()
    customer = CustomerFactory(attributes={"time_zone": "America/New_York"}, accepts_marketing=True)

    assert mail(customer, "a").status == "queued"  # the default (Paris) decides: midnight there


# --- the migration ---------------------------------------------------------------------------------------


def test_the_migration_moves_known_names_to_the_column_and_leaves_unknown_ones():
    moved = CustomerFactory(attributes={"time_zone": "america/new_york", "vip": True})
    unknown = CustomerFactory(attributes={"time_zone": "Mars/Olympus"})
    untouched = CustomerFactory(attributes={"vip": False}, time_zone="Asia/Tokyo")
    Customer.objects.filter(pk__in=[moved.pk, unknown.pk]).update(time_zone="")

    migration.move_to_column(django_apps, None)

    rows = {row.pk: (row.time_zone, row.attributes) for row in Customer.objects.all()}
    assert rows == {
        moved.pk: ("America/New_York", {"vip": True}),
        unknown.pk: ("", {"time_zone": "Mars/Olympus"}),
        untouched.pk: ("Asia/Tokyo", {"vip": False}),
    }

    migration.move_back(django_apps, None)

    attributes = dict(Customer.objects.values_list("pk", "attributes"))
    assert attributes[moved.pk] == {"vip": True, "time_zone": "America/New_York"}
    assert attributes[untouched.pk] == {"vip": False, "time_zone": "Asia/Tokyo"}


# --- API ---------------------------------------------------------------------------------------------------


@pytest.fixture
def api():
    user = UserFactory(username="integrator", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_takes_a_time_zone_in_any_letter_case_and_stores_the_databases_spelling(api):
    created = api.post("/api/v1/customers/", {"external_id": "tz-1", "time_zone": "europe/PARIS"}, format="json")

    assert created.status_code == 201
    assert created.json()["time_zone"] == "Europe/Paris"
    customer = Customer.objects.get(external_id="tz-1")
    assert customer.time_zone == "Europe/Paris"
    cleared = api.patch(f"/api/v1/customers/{customer.pk}/", {"time_zone": ""}, format="json")
    assert (cleared.status_code, cleared.json()["time_zone"]) == (200, "")


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../etc/passwd", "localtime", "x" * 65, "Europe/"])
def test_an_unknown_time_zone_is_a_400_naming_the_field_and_nothing_is_stored(api, value):
    response = api.post("/api/v1/customers/", {"external_id": "tz-2", "time_zone": value}, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["time_zone"]
    assert not Customer.objects.filter(external_id="tz-2").exists()


def test_a_time_zone_embedded_in_an_order_is_validated_with_its_path(api):
    response = api.post(
        "/api/v1/orders/",
        {
            "external_id": "o-1",
            "customer": {"external_id": "tz-3", "time_zone": "Nowhere/City"},
            "currency": "EUR",
            "lines": [{"title": "Mug", "quantity": 1, "unit_price": "10.00"}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert "customer.time_zone" in [error["path"] for error in response.json()["errors"]]
    assert not Customer.objects.filter(external_id="tz-3").exists()


def test_a_user_who_may_not_change_customers_is_refused_403_and_nothing_changes():
    customer = CustomerFactory(time_zone="Asia/Tokyo")
    client = APIClient()
    client.force_authenticate(user_in("analyst", "reader"))

    response = client.patch(f"/api/v1/customers/{customer.pk}/", {"time_zone": "Europe/Paris"}, format="json")

    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.time_zone == "Asia/Tokyo"


# --- CSV import ------------------------------------------------------------------------------------------


def _import(tmp_path, text: str) -> str:
    path = tmp_path / "customers.csv"
    path.write_text(text)
    err = StringIO()
    # the command fails when a row was refused; the lines on stderr say why
    with contextlib.suppress(CommandError):
        call_command("import_csv", "customers", str(path), stdout=StringIO(), stderr=err)
    return err.getvalue()


def test_the_csv_import_reads_a_time_zone_column_and_refuses_unknown_names_by_line(tmp_path):
    err = _import(
        tmp_path,
        "external_id,email,time_zone\nc-1,ana@example.com,asia/tokyo\nc-2,bo@example.com,Atlantis/Capital\n"
        "c-3,cy@example.com,\n",
    )

    assert err.splitlines() == [
        "line 3: time_zone: Unknown time zone 'Atlantis/Capital': use an IANA name such as Europe/Paris or "
        "America/New_York."
    ]
    assert dict(Customer.objects.values_list("external_id", "time_zone")) == {"c-1": "Asia/Tokyo", "c-3": ""}


def test_the_console_import_maps_a_timezone_or_tz_header_to_the_column():
    from apps.tagging.imports.rows import mapping_guess

    assert mapping_guess("customers", ["External ID", "Timezone", "TZ"]) == {
        "External ID": "external_id",
        "Timezone": "time_zone",
        "TZ": "",  # a second column for the same field is not imported
    }


# --- admin and console --------------------------------------------------------------------------------------


def _admin_form(client, customer, **changes) -> dict:
    page = client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    # the inline's management form (its prefix is the admin's to choose)
    management = dict(re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"', page))
    form = {
        **management,
        "external_id": customer.external_id or "",
        "email": customer.email,
        "phone": customer.phone,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "country": customer.country,
        "language": customer.language,
        "time_zone": customer.time_zone,
        "preferred_currency": customer.preferred_currency,
        "accepts_marketing": "on",
        "attributes": "{}",
    }
    form.update(changes)
    return form


def test_support_sets_the_time_zone_in_the_admin_and_a_bad_name_is_refused(client):
    customer = CustomerFactory(time_zone="", accepts_marketing=True, attributes={})
    url = f"/admin/customers/customer/{customer.pk}/change/"
    client.force_login(user_in("support", "sp"))  # support edits contact data (customers.change_customer)

    refused = client.post(url, _admin_form(client, customer, time_zone="Mars/Olympus"))
    assert refused.status_code == 200
    assert "Unknown time zone" in refused.content.decode()
    customer.refresh_from_db()
    assert customer.time_zone == ""

    saved = client.post(url, _admin_form(client, customer, time_zone="Europe/Lisbon"))
    assert saved.status_code == 302
    customer.refresh_from_db()
    assert customer.time_zone == "Europe/Lisbon"

    page = client.get(f"/admin/console/customers/{customer.pk}/").content.decode()
    assert '<dd data-testid="time-zone">Europe/Lisbon</dd>' in page
