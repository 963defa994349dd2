"""Consent columns of the customers CSV import: accepts_marketing (e-mail) and sms_marketing, with a source."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.customers.consent.models import Consent, ConsentEvent
from apps.customers.models import Customer, DomainEvent
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _import(tmp_path, text: str) -> tuple[str, str | None]:
    path = tmp_path / "customers.csv"
    path.write_text(text)
    err = StringIO()
    try:
        call_command("import_csv", "customers", str(path), stdout=StringIO(), stderr=err)
    except CommandError as error:
        return err.getvalue(), str(error)
    return err.getvalue(), None


def test_consent_columns_record_consents_with_their_source(tmp_path):
    known = CustomerFactory(external_id="c-3", phone="+15550003", accepts_marketing=True)
    Consent.objects.create(customer=known, channel="sms", purpose="marketing", status="granted", source="api")

    err, failure = _import(
        tmp_path,
        "external_id,email,phone,accepts_marketing,sms_marketing,consent_source\n"
        "c-1,ana@example.com,+15550001,yes,yes,form:shop-signup\n"
        "c-2,bo@example.com,+15550002,no,no,\n"
        "c-3,cy@example.com,+15550003,no,no,\n",
    )

    assert (err, failure) == ("", None)
    rows = sorted(Consent.objects.values_list("customer__external_id", "channel", "status", "source"))
    assert rows == [
        ("c-1", "email", "granted", "form:shop-signup"),
        ("c-1", "sms", "granted", "form:shop-signup"),
        ("c-3", "email", "withdrawn", "csv"),
        ("c-3", "sms", "withdrawn", "csv"),
    ]
    # "no" for a customer who never consented records nothing and fires no unsubscribe
    assert Customer.objects.get(external_id="c-2").accepts_marketing is False
    unsubscribed = DomainEvent.objects.filter(name="customer.unsubscribed").order_by("pk")
    assert [(event.customer.external_id, event.payload["channel"]) for event in unsubscribed] == [
        ("c-3", "email"),
        ("c-3", "sms"),
    ]
    assert ConsentEvent.objects.filter(customer__external_id="c-3").count() == 2


def test_bad_consent_values_are_refused_by_line_and_column(tmp_path):
    err, failure = _import(
        tmp_path,
        "external_id,email,sms_marketing,consent_source\nc-1,ana@example.com,perhaps,Bad Source!\n",
    )

    assert err.splitlines() == [
        "line 2: sms_marketing: use true/false, yes/no or 1/0.; "
        "consent_source: a lower-case word, optionally followed by ':' and a reference."
    ]
    assert failure is not None
    assert Customer.objects.count() == 0 and Consent.objects.count() == 0
