"""
The provider tracking receiver (django-anymail's tracking webhooks, Postmark's payloads here): bounces and
complaints suppress the address and mark the delivery, deliveries and opens are recorded; the webhook secret
(basic auth) is checked first — a wrong one is a 403 that changes nothing.
"""

import base64
import json
from datetime import UTC, datetime

import pytest

from apps.customers.consent.models import Suppression
from apps.customers.messaging import services
from apps.customers.messaging.models import Delivery
from apps.customers.messaging.services import Content
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/hooks/anymail/postmark/tracking/"
SECRET = "tracker:s3cret-value"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def auth(secret: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def post(client, payload, secret: str = SECRET):
    return client.post(URL, json.dumps(payload), content_type="application/json", **auth(secret))


def sent(email="ana@example.com", message_id="pm-1") -> Delivery:
    customer = CustomerFactory(email=email, accepts_marketing=True)
    delivery = services.message_send(
        key=f"k-{message_id}", channel="email", purpose="marketing", customer=customer, content=Content(text="x")
    )
    Delivery.objects.filter(pk=delivery.pk).update(provider_message_id=message_id)
    delivery.refresh_from_db()
    return delivery


def test_a_hard_bounce_suppresses_the_address_and_fails_the_delivery(client):
    delivery = sent()

    response = post(
        client,
        {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "MessageID": "pm-1",
            "Email": "Ana@Example.com",
            "BouncedAt": "2026-06-01T10:00:00Z",
            "Description": "The server was unable to deliver your message",
        },
    )

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.provider_event) == ("failed", "invalid_address", "bounced")
    assert delivery.error == "Bounced (Postmark): The server was unable to deliver your message"
    assert list(Suppression.objects.values_list("address", "channel", "reason", "source")) == [
        ("ana@example.com", "email", "hard_bounce", "anymail:postmark")
    ]
    # the address receives nothing more
    again = services.message_send(
        key="next", channel="email", purpose="marketing", customer=delivery.customer, content=Content(text="y")
    )
    assert (again.status, again.reason) == ("suppressed", "suppressed")


def test_a_complaint_suppresses_the_address_and_keeps_the_delivery_sent(client):
    delivery = sent()

    post(
        client,
        {
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "MessageID": "pm-1",
            "Email": "ana@example.com",
            "BouncedAt": "2026-06-01T11:00:00Z",
        },
    )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_event) == ("sent", "complained")
    assert delivery.complained_at == datetime(2026, 6, 1, 11, 0, tzinfo=UTC)
    assert Suppression.objects.get().reason == "complaint"


def test_delivered_and_opened_are_recorded_once_and_a_replay_changes_nothing(client):
    delivery = sent()
    delivered = {
        "RecordType": "Delivery",
        "MessageID": "pm-1",
        "Recipient": "ana@example.com",
        "DeliveredAt": "2026-06-01T10:00:05Z",
    }
    opened = {
        "RecordType": "Open",
        "MessageID": "pm-1",
        "Recipient": "ana@example.com",
        "ReceivedAt": "2026-06-01T12:30:00Z",
    }

    assert [post(client, payload).status_code for payload in (delivered, opened, opened, delivered)] == [200] * 4

    delivery.refresh_from_db()
    assert delivery.delivered_at == datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC)
    assert delivery.opened_at == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    # the latest event by the provider's clock, although the older delivery report arrived last
    assert (delivery.provider_event, delivery.provider_event_at) == ("opened", delivery.opened_at)
    assert delivery.status == "sent"
    assert not Suppression.objects.exists()


def test_a_bounce_for_an_unknown_message_still_suppresses_the_address(client):
    response = post(
        client,
        {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "MessageID": "elsewhere",
            "Email": "bo@example.com",
            "BouncedAt": "2026-06-01T10:00:00Z",
        },
    )

    assert response.status_code == 200
    assert list(Suppression.objects.values_list("address", "reason")) == [("bo@example.com", "hard_bounce")]


@pytest.mark.parametrize("secret", ["tracker:wrong", "", "someone:s3cret-value"])
def test_a_wrong_or_missing_secret_is_403_and_changes_nothing(client, secret):
    delivery = sent()
    bounce = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": "pm-1",
        "Email": "ana@example.com",
        "BouncedAt": "2026-06-01T10:00:00Z",
    }

    response = (
        client.post(URL, json.dumps(bounce), content_type="application/json")
        if not secret
        else post(client, bounce, secret=secret)
    )

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_event) == ("sent", "")
    assert not Suppression.objects.exists()


def test_without_a_configured_secret_the_endpoint_does_not_exist(client, settings):
    settings.ANYMAIL = {}

    response = post(client, {"RecordType": "Delivery", "MessageID": "pm-1"})

    assert response.status_code == 404


def test_an_unknown_provider_is_404_and_an_unreadable_payload_is_400_storing_nothing(client):
    sent()
    unknown = client.post("/hooks/anymail/pigeon/tracking/", "{}", content_type="application/json", **auth())
    unreadable = client.post(URL, "not json", content_type="application/json", **auth())

    assert unknown.status_code == 404
    assert (unreadable.status_code, unreadable.json()["error"]) == (400, "validation_error")
    assert Delivery.objects.get().provider_event == ""


def test_an_oversized_body_is_refused_before_it_is_read(client):
    response = client.generic(
        "POST", URL, b"{}", content_type="application/json", CONTENT_LENGTH=str(6 * 1024 * 1024), **auth()
    )

    assert response.status_code == 413
