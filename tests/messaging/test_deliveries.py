"""Deliveries: one row per message, consent and addresses decide, providers' failures retried or failed."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from apps.customers.messaging import services
from apps.customers.messaging.models import Delivery
from apps.customers.messaging.services import Content
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HELLO = Content(subject="Hello", text="Hi there", html="<p>Hi there</p>")


def send(customer, *, key="k1", channel="email", purpose="marketing", content=HELLO, **kwargs):
    return services.message_send(
        key=key, channel=channel, purpose=purpose, customer=customer, content=content, cause="campaign:1", **kwargs
    )


def test_an_email_is_sent_with_text_and_html_and_recorded():
    customer = CustomerFactory(email="ana@example.com")

    delivery = send(customer)

    assert delivery.status == "sent"
    assert delivery.attempts == 1
    assert delivery.cause == "campaign:1"
    assert delivery.to == "ana@example.com"
    [message] = mail.outbox
    assert message.to == ["ana@example.com"]
    assert message.subject == "Hello"
    assert message.body == "Hi there"
    assert message.alternatives[0][0] == "<p>Hi there</p>"
    assert delivery.provider_message_id == message.extra_headers["Message-ID"]
    assert delivery.sent_at is not None


def test_the_same_key_twice_makes_one_row_and_one_message():
    customer = CustomerFactory()

    first = send(customer)
    second = send(customer)

    assert first.pk == second.pk
    assert Delivery.objects.count() == 1
    assert len(mail.outbox) == 1


def test_sending_a_sent_row_again_sends_nothing():
    delivery = send(CustomerFactory())

    counts = services.deliveries_send(ids=[delivery.pk])

    assert counts == {}
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


@pytest.mark.parametrize(
    ("fields", "purpose", "reason"),
    [
        ({"accepts_marketing": False}, "marketing", "no_consent"),
        ({"accepts_marketing": False, "unsubscribed_at": timezone.now()}, "marketing", "unsubscribed"),
        ({"status": "blocked"}, "marketing", "blocked"),
        ({"status": "blocked"}, "transactional", "blocked"),
        ({"email": ""}, "transactional", "invalid_address"),
        ({"email": "not-an-address"}, "marketing", "invalid_address"),
    ],
)
def test_a_message_that_may_not_go_out_is_a_suppressed_row_with_its_reason(fields, purpose, reason):
    customer = CustomerFactory(**fields)

    delivery = send(customer, purpose=purpose)

    assert (delivery.status, delivery.reason) == ("suppressed", reason)
    assert delivery.sent_at is None
    assert mail.outbox == []


def test_transactional_mail_needs_no_marketing_consent():
    customer = CustomerFactory(accepts_marketing=False)

    delivery = send(customer, purpose="transactional")

    assert delivery.status == "sent"
    assert len(mail.outbox) == 1


def test_an_in_app_message_goes_straight_to_the_inbox_unread():
    customer = CustomerFactory()

    delivery = send(customer, channel="in_app")

    assert (delivery.status, delivery.read_at) == ("sent", None)
    assert mail.outbox == []
    assert services.inbox_mark_read(customer=CustomerFactory(), delivery_id=delivery.pk) is False  # not theirs
    assert services.inbox_mark_read(customer=customer, delivery_id=delivery.pk) is True
    assert services.inbox_mark_read(customer=customer, delivery_id=delivery.pk) is False  # already read


# --- A real SMTP server (aiosmtpd on 127.0.0.1) ------------------------------------------------------------


def test_smtp_sink_receives_the_multipart_message(smtp_sink):
    delivery = send(CustomerFactory(email="bo@example.com"))

    assert delivery.status == "sent"
    [message] = smtp_sink.messages
    assert message["To"] == "bo@example.com"
    assert message["Message-ID"] == delivery.provider_message_id
    assert sorted(part.get_content_type() for part in message.walk() if not part.is_multipart()) == [
        "text/html",
        "text/plain",
    ]


def test_a_temporary_smtp_refusal_is_retried_with_backoff_until_sent(smtp_sink):
    smtp_sink.replies = ["421 Try again later"]
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        delivery = send(CustomerFactory())

        assert (delivery.status, delivery.attempts) == ("queued", 1)
        assert delivery.send_after == start + timedelta(seconds=30)
        assert "421" in delivery.error
        assert services.deliveries_due_send() == {}  # not due yet
    with time_machine.travel(start + timedelta(seconds=31), tick=False):
        assert services.deliveries_due_send() == {"sent": 1}

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 2, "")
    assert len(smtp_sink.messages) == 1


def test_a_permanent_smtp_refusal_fails_the_row_with_the_reason(smtp_sink):
    smtp_sink.replies = ["550 Mailbox unavailable"]

    delivery = send(CustomerFactory())

    assert (delivery.status, delivery.reason, delivery.attempts) == ("failed", "provider_error", 1)
    assert "550" in delivery.error
    assert smtp_sink.messages == []


def test_retries_are_bounded(settings, smtp_sink):
    settings.MESSAGING_MAX_ATTEMPTS = 2
    smtp_sink.replies = ["451 Busy", "451 Busy", "451 Busy"]
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        delivery = send(CustomerFactory())
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        services.deliveries_due_send()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.attempts) == ("failed", "provider_error", 2)
    assert smtp_sink.messages == []


def test_an_unreachable_smtp_server_is_transient(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2

    delivery = send(CustomerFactory())

    assert (delivery.status, delivery.attempts) == ("queued", 1)
    assert delivery.send_after is not None
    assert "ConnectionRefusedError" in delivery.error


def test_anymail_backends_report_the_providers_message_id(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    delivery = send(CustomerFactory())

    assert delivery.status == "sent"
    [message] = mail.outbox
    assert delivery.provider_message_id == str(message.anymail_status.message_id)
    assert delivery.provider_message_id != message.extra_headers["Message-ID"]


# --- Consent (apps/customers/consent): one-click unsubscribe headers, suppression list --------------------


def test_marketing_mail_carries_the_one_click_unsubscribe_headers_and_transactional_does_not(smtp_sink):
    customer = CustomerFactory()

    send(customer, key="m", purpose="marketing")
    send(customer, key="t", purpose="transactional")

    marketing, transactional = smtp_sink.messages
    header = " ".join(str(marketing["List-Unsubscribe"]).split())  # unfolded
    assert header.startswith("<http://") and "/u/" in header and header.endswith(">")
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert transactional["List-Unsubscribe"] is None


def test_a_refused_recipient_is_put_on_the_suppression_list_and_never_mailed_again(smtp_sink):
    from apps.customers.consent.models import Suppression

    customer = CustomerFactory(email="gone@example.com")
    smtp_sink.replies = []
    with_refusal = services.message_send(
        key="a", channel="email", purpose="transactional", customer=customer, content=HELLO, to="nobody@invalid"
    )
    assert with_refusal.status == "suppressed"  # not an address at all: never handed to the server

    import smtplib

    def refuse(*args, **kwargs):
        raise smtplib.SMTPRecipientsRefused({"gone@example.com": (550, b"No such user")})

    from unittest import mock

    with mock.patch("django.core.mail.backends.smtp.EmailBackend.send_messages", refuse):
        bounced = send(customer, key="b")
    again = send(customer, key="c")

    assert (bounced.status, bounced.reason) == ("failed", "invalid_address")
    assert Suppression.objects.filter(address="gone@example.com", channel="email", reason="hard_bounce").exists()
    assert (again.status, again.reason) == ("suppressed", "suppressed")
    assert smtp_sink.messages == []
