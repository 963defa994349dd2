"""Double opt-in: a signed, expiring confirmation link; confirm once; replays and tampering change nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from apps.customers import services as customers
from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent
from apps.customers.messaging.models import Delivery
from apps.customers.models import DomainEvent
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _link_token(message) -> str:
    line = next(line for line in message.body.splitlines() if "/c/" in line)
    return line.strip().rstrip("/").rsplit("/c/", 1)[1]


def _requested(customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        consent.request_double_opt_in(customer, source="form:newsletter")
    return _link_token(mail.outbox[-1])


def test_request_records_pending_and_mails_a_signed_link(django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)

    token = _requested(customer, django_capture_on_commit_callbacks)

    row = Consent.objects.get(customer=customer)
    assert (row.channel, row.purpose, row.status, row.source) == ("email", "marketing", "pending", "form:newsletter")
    assert mail.outbox[0].to == ["ana@example.com"]
    assert mail.outbox[0].subject == "Please confirm your subscription"
    assert f"http://127.0.0.1:8000/c/{token}/" in mail.outbox[0].body
    assert consent.allows(customer, channel="email", purpose="marketing") == "unconfirmed"
    # sent through messaging as a transactional message: one Delivery row, no unsubscribe header
    delivery = Delivery.objects.get(customer=customer)
    assert (delivery.channel, delivery.purpose, delivery.status) == ("email", "transactional", "sent")
    assert delivery.cause == f"consent_confirm:{row.pk}"
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


def test_confirming_grants_and_fires_consent_confirmed_once(client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)
    token = _requested(customer, django_capture_on_commit_callbacks)

    page = client.get(reverse("consent-confirm", kwargs={"token": token}))
    assert page.status_code == 200 and b'data-testid="confirm-subscription"' in page.content
    assert Consent.objects.get(customer=customer).status == "pending"  # a GET (a link scanner) confirms nothing

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(reverse("consent-confirm", kwargs={"token": token}))
        second = client.post(reverse("consent-confirm", kwargs={"token": token}))

    assert b'data-testid="confirmed"' in first.content
    assert second.status_code == 200 and b'data-testid="already-confirmed"' in second.content
    row = Consent.objects.get(customer=customer)
    assert row.status == "granted" and row.confirmed_at is not None
    customer.refresh_from_db()
    assert customer.accepts_marketing is True
    assert DomainEvent.objects.filter(customer=customer, name="customer.consent_confirmed").count() == 1
    assert consent.allows(customer, channel="email", purpose="marketing") is None


def test_an_expired_link_confirms_nothing(client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)
    token = _requested(customer, django_capture_on_commit_callbacks)

    with time_machine.travel(timezone.now() + timedelta(hours=72, minutes=1)):
        response = client.post(reverse("consent-confirm", kwargs={"token": token}))

    assert response.status_code == 404 and b'data-testid="invalid-link"' in response.content
    assert Consent.objects.get(customer=customer).status == "pending"
    assert not DomainEvent.objects.filter(name="customer.consent_confirmed").exists()


def test_a_tampered_link_confirms_nothing(client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)
    token = _requested(customer, django_capture_on_commit_callbacks)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    response = client.post(reverse("consent-confirm", kwargs={"token": tampered}))

    assert response.status_code == 404
    assert Consent.objects.get(customer=customer).status == "pending"


def test_a_newer_request_voids_the_older_link(client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)
    old = _requested(customer, django_capture_on_commit_callbacks)
    new = _requested(customer, django_capture_on_commit_callbacks)

    assert client.post(reverse("consent-confirm", kwargs={"token": old})).status_code == 404
    assert client.post(reverse("consent-confirm", kwargs={"token": new})).status_code == 200
    assert Consent.objects.get(customer=customer).status == "granted"


def test_a_link_after_unsubscribing_confirms_nothing(client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)
    token = _requested(customer, django_capture_on_commit_callbacks)
    consent.consent_withdraw(customer=customer, source="admin")

    response = client.post(reverse("consent-confirm", kwargs={"token": token}))

    assert response.status_code == 404
    assert Consent.objects.get(customer=customer).status == "withdrawn"


def test_an_already_granted_customer_gets_no_mail(django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)
    consent.consent_set(customer=customer, channel="email", purpose="marketing", status="granted", source="admin")

    with django_capture_on_commit_callbacks(execute=True):
        consent.request_double_opt_in(customer, source="form:newsletter")

    assert mail.outbox == []
    assert Consent.objects.get(customer=customer).status == "granted"


def test_with_double_opt_in_on_an_api_sign_up_waits_for_the_click(settings, django_capture_on_commit_callbacks):
    settings.CONSENT_DOUBLE_OPT_IN = True

    with django_capture_on_commit_callbacks(execute=True):
        customer = customers.customer_create(
            external_id="c-1", email="bo@example.com", accepts_marketing=True, cause="api:token:1"
        )
        silent = customers.customer_create(external_id="c-2", email="cy@example.com", cause="api:token:1")

    assert Consent.objects.get(customer=customer).status == "pending"
    assert customer.accepts_marketing is False
    assert silent.accepts_marketing is False and not Consent.objects.filter(customer=silent).exists()
    assert [message.to for message in mail.outbox] == [["bo@example.com"]]
    assert consent.allows(customer, channel="email", purpose="marketing") == "unconfirmed"


def test_without_double_opt_in_an_admin_grant_is_immediate(settings):
    settings.CONSENT_DOUBLE_OPT_IN = True
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=False)

    consent.consent_grant(customer=customer, channel="email", source="admin")

    assert Consent.objects.get(customer=customer).status == "granted"
    assert mail.outbox == []
