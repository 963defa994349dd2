"""The signed bounce/complaint receiver: HMAC, size cap, paths on bad input, suppression on good input."""

import json

import pytest

from apps.customers.consent import services as consent
from apps.customers.consent.bounces import signature_for
from apps.customers.consent.models import Suppression
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SECRET = "bounce-secret"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.CONSENT_BOUNCE_WEBHOOK_SECRET = SECRET


def post(client, payload, *, secret=SECRET, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    return client.post(
        "/hooks/bounces/", body, content_type="application/json", HTTP_X_LOYALTY_SIGNATURE=signature_for(body, secret)
    )


def test_a_hard_bounce_and_a_complaint_suppress_their_addresses(client):
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=True)
    events = [
        {"address": "ANA@example.com", "channel": "email", "type": "hard_bounce"},
        {"address": "+15550001", "channel": "sms", "type": "complaint"},
    ]

    response = post(client, {"events": events})
    again = post(client, {"events": events})

    assert response.status_code == 200 and response.json() == {"status": "accepted", "suppressed": 2}
    assert again.status_code == 200
    rows = sorted(Suppression.objects.values_list("address", "channel", "reason", "source"))
    assert rows == [
        ("+15550001", "sms", "complaint", "bounce_webhook"),
        ("ana@example.com", "email", "hard_bounce", "bounce_webhook"),
    ]
    assert consent.allows(customer, channel="email", purpose="transactional") == "suppressed"


def test_a_wrong_signature_is_refused_and_changes_nothing(client):
    response = post(client, {"events": [{"address": "a@example.com", "type": "complaint"}]}, secret="guess")

    assert response.status_code == 401 and response.json()["error"] == "invalid_signature"
    assert Suppression.objects.count() == 0


def test_without_a_secret_the_endpoint_does_not_exist(client, settings):
    settings.CONSENT_BOUNCE_WEBHOOK_SECRET = ""

    response = post(client, {"events": [{"address": "a@example.com", "type": "complaint"}]}, secret="")

    assert response.status_code == 404
    assert Suppression.objects.count() == 0


def test_bad_events_are_a_400_with_paths_and_nothing_is_stored(client):
    events = [
        {"address": "ok@example.com", "type": "complaint"},
        {"address": "", "channel": "fax", "type": "soft_bounce"},
    ]

    response = post(client, {"events": events})

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == [
        "events[1].address",
        "events[1].channel",
        "events[1].type",
    ]
    assert Suppression.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"not json", 400), (json.dumps({"events": []}).encode(), 400), (b"x" * (16 * 1024 + 1), 413)],
)
def test_malformed_empty_or_oversized_bodies_are_refused(client, raw, status):
    response = post(client, None, raw=raw)

    assert response.status_code == status
    assert Suppression.objects.count() == 0


def test_more_than_100_events_are_refused(client):
    events = [{"address": f"a{index}@example.com", "type": "complaint"} for index in range(101)]

    response = post(client, {"events": events})

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "events"
    assert Suppression.objects.count() == 0


def test_get_is_not_allowed(client):
    assert client.get("/hooks/bounces/").status_code == 405
