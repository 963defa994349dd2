"""
SMS double opt-in: signing up with a phone and marketing-SMS consent (API, double opt-in on) sends a
confirmation SMS through the SMS channel (transactional) with a signed, expiring link; the click grants the
consent and fires `customer.consent_confirmed`. Expiry, replay and tampering change nothing.
"""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.urls import reverse

from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent
from apps.customers.messaging.models import Delivery, SendingPolicy
from apps.customers.models import Customer, DomainEvent

pytestmark = pytest.mark.django_db
SIGN_UP = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # 23:00 in New York: inside the SMS quiet hours


@pytest.fixture(autouse=True)
def double_opt_in(settings):
    settings.CONSENT_DOUBLE_OPT_IN = True


def sign_up(api, django_capture_on_commit_callbacks, **fields):
    body = {
        "external_id": "c-1",
        "phone": "+15551234567",
        "time_zone": "America/New_York",
        "consents": [{"channel": "sms", "status": "granted"}],
        **fields,
    }
    with time_machine.travel(SIGN_UP, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/customers/", body, format="json")
    assert response.status_code == 201, response.content
    return Customer.objects.get(external_id="c-1")


def link_token(text: str) -> str:
    return text.split("/c/", 1)[1].split("/", 1)[0]


def test_an_sms_sign_up_is_pending_and_gets_a_confirmation_sms_at_once_even_in_quiet_hours(
    api,
    sms_api,
    django_capture_on_commit_callbacks,
):
    policy = SendingPolicy.current()
    policy.quiet_hours_start, policy.quiet_hours_end, policy.quiet_hours_sms = time(21, 0), time(8, 0), True
    policy.save()

    customer = sign_up(api, django_capture_on_commit_callbacks)

    row = Consent.objects.get(customer=customer, channel="sms")
    assert (row.purpose, row.status, row.source) == ("marketing", "pending", "api")
    assert consent.allows(customer, channel="sms", purpose="marketing") == "unconfirmed"
    [request] = sms_api.requests
    assert request["form"]["To"] == "+15551234567"
    text = request["form"]["Body"]
    token = link_token(text)
    assert text == (
        f"Loyalty Site: please confirm you want our offers by SMS: http://127.0.0.1:8000/c/{token}/ (valid 72 h). "
        "Not you? Ignore this."
    )
    delivery = Delivery.objects.get(customer=customer)
    assert (delivery.channel, delivery.purpose, delivery.status, delivery.text) == (
        "sms",
        "transactional",
        "sent",
        text,
    )
    assert delivery.cause == f"consent_confirm:{row.pk}"


def test_the_click_grants_sms_marketing_and_fires_consent_confirmed_once(
    client,
    api,
    sms_api,
    django_capture_on_commit_callbacks,
):
    customer = sign_up(api, django_capture_on_commit_callbacks)
    url = reverse("consent-confirm", kwargs={"token": link_token(sms_api.requests[0]["form"]["Body"])})

    with time_machine.travel(SIGN_UP + timedelta(hours=1), tick=False):  # the link works for 72 hours
        assert client.get(url).status_code == 200
        assert Consent.objects.get(customer=customer, channel="sms").status == "pending"  # a GET confirms nothing
        with django_capture_on_commit_callbacks(execute=True):
            first = client.post(url)
            replay = client.post(url)

    assert b'data-testid="confirmed"' in first.content
    assert b'data-testid="already-confirmed"' in replay.content
    row = Consent.objects.get(customer=customer, channel="sms")
    assert row.status == "granted" and row.confirmed_at is not None
    events = DomainEvent.objects.filter(customer=customer, name="customer.consent_confirmed")
    assert [event.payload["channel"] for event in events] == ["sms"]
    assert consent.allows(customer, channel="sms", purpose="marketing") is None


def test_an_expired_or_tampered_sms_link_confirms_nothing(client, api, sms_api, django_capture_on_commit_callbacks):
    customer = sign_up(api, django_capture_on_commit_callbacks)
    token = link_token(sms_api.requests[0]["form"]["Body"])

    with time_machine.travel(SIGN_UP + timedelta(hours=73), tick=False):
        expired = client.post(reverse("consent-confirm", kwargs={"token": token}))
    tampered = client.post(
        reverse("consent-confirm", kwargs={"token": token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]})
    )

    assert [expired.status_code, tampered.status_code] == [404, 404]
    assert Consent.objects.get(customer=customer, channel="sms").status == "pending"
    assert not DomainEvent.objects.filter(name="customer.consent_confirmed").exists()


def test_an_admin_sms_grant_needs_no_confirmation(sms_api):
    from tests.factories import CustomerFactory

    customer = CustomerFactory(phone="+15550001111")

    consent.consent_grant(customer=customer, channel="sms", source="admin")

    assert Consent.objects.get(customer=customer).status == "granted"
    assert sms_api.requests == []
