"""SMS: the console/file backend and a Twilio-compatible HTTP API (a real server on 127.0.0.1)."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.customers.messaging import services
from apps.customers.messaging.services import Content
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def send_sms(customer, *, key="s1", purpose="transactional"):
    return services.message_send(
        key=key, channel="sms", purpose=purpose, customer=customer, content=Content(text="Your code: 1234")
    )


def test_the_console_backend_writes_each_message_to_the_file(settings, tmp_path):
    settings.SMS_BACKEND = "apps.customers.messaging.sms.ConsoleSmsBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")

    delivery = send_sms(CustomerFactory(phone="+15551234567"))

    line = json.loads((tmp_path / "sms.jsonl").read_text())
    assert line == {"id": delivery.provider_message_id, "to": "+15551234567", "text": "Your code: 1234"}
    assert delivery.status == "sent"


def test_the_http_provider_gets_the_message_with_basic_auth(sms_api):
    delivery = send_sms(CustomerFactory(phone="+1 555 123 4567"))

    [request] = sms_api.requests
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["form"] == {"To": "+15551234567", "From": "+15550000000", "Body": "Your code: 1234"}
    assert sms_api.basic_auth() == ("AC123", "secret-token")
    assert (delivery.status, delivery.provider_message_id) == ("sent", f"SM{1:032d}")


def test_a_5xx_is_retried_after_the_backoff(sms_api):
    sms_api.answers = [(503, {"message": "busy"})]
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        delivery = send_sms(CustomerFactory(phone="+15551234567"))
    assert (delivery.status, delivery.attempts, delivery.error) == ("queued", 1, "HTTP 503: busy")

    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        assert services.deliveries_due_send() == {"sent": 1}

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(sms_api.requests) == 2
    # the same idempotency key both times: a provider that de-duplicates sends one text
    assert sms_api.requests[0]["headers"]["idempotency-key"] == sms_api.requests[1]["headers"]["idempotency-key"]


def test_a_4xx_fails_with_the_reason(sms_api):
    sms_api.answers = [(400, {"code": 21211, "message": "The 'To' number is not a valid phone number."})]

    delivery = send_sms(CustomerFactory(phone="+15551234567"))

    assert (delivery.status, delivery.reason, delivery.attempts) == ("failed", "invalid_address", 1)
    assert delivery.error == "HTTP 400: The 'To' number is not a valid phone number."
    assert services.deliveries_due_send() == {}
    assert len(sms_api.requests) == 1


def test_a_401_is_a_provider_error_not_retried(sms_api):
    sms_api.answers = [(401, {"code": 20003, "message": "Authenticate"})]

    delivery = send_sms(CustomerFactory(phone="+15551234567"))

    assert (delivery.status, delivery.reason) == ("failed", "provider_error")


def test_a_number_that_is_not_e164_is_never_sent(sms_api):
    delivery = send_sms(CustomerFactory(phone="0123"))

    assert (delivery.status, delivery.reason) == ("suppressed", "invalid_address")
    assert sms_api.requests == []
