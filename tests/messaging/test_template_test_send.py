"""A template's test send goes through the messaging pipeline: a transactional Delivery to the staff user."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from apps.customers.consent import services as consent
from apps.customers.messaging.models import Delivery
from apps.customers.messaging.templating import services as templates
from apps.customers.messaging.templating.models import MessageTemplate
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def login(client, role, **fields):
    user = UserFactory(username=f"tt-{role}", is_superuser=False, is_staff=True, **fields)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def template() -> MessageTemplate:
    return templates.template_create(
        key="welcome",
        name="Welcome",
        channel="email",
        purpose="marketing",
        subject="Hi {{ customer.first_name }}",
        body="Hello **{{ customer.first_name }}**",
    )


def test_a_test_send_is_a_transactional_delivery_to_me_rendered_exactly_as_the_preview_from_the_brand(client):
    welcome = template()
    templates.brand_update(fields={"name": "Acme", "sender_name": "Acme Club", "sender_email": "club@acme.test"})
    # The customer withdrew marketing e-mail: the test goes to me, not to them, so it is still sent.
    customer = CustomerFactory(first_name="Ana", accepts_marketing=True)
    consent.consent_withdraw(customer=customer, channel="email", source="admin")
    login(client, "marketer", email="me@acme.test")
    preview = client.post(
        f"/admin/messaging/templates/{welcome.pk}/preview/", {"customer": customer.pk, "format": "json"}
    ).json()

    response = client.post(
        f"/admin/messaging/templates/{welcome.pk}/send-test/", {"customer": customer.pk}, follow=True
    )

    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.purpose, delivery.customer_id, delivery.to) == (
        "email",
        "transactional",
        None,
        "me@acme.test",
    )
    assert (delivery.status, delivery.reason, delivery.attempts) == ("sent", "", 1)
    assert (delivery.cause, delivery.template_key, delivery.locale) == (f"template_test:{welcome.pk}", "welcome", "en")
    assert (delivery.subject, delivery.text, delivery.html) == (
        "[Test] " + preview["subject"],
        preview["text"],
        preview["html"],
    )
    [message] = mail.outbox
    assert (message.to, message.subject, message.from_email, message.body) == (
        ["me@acme.test"],
        "[Test] Hi Ana",
        "Acme Club <club@acme.test>",
        delivery.text,
    )
    assert message.alternatives[0] == (delivery.html, "text/html")
    assert delivery.provider_message_id == message.extra_headers["Message-ID"]
    page = response.content.decode()
    assert f'Test sent to me@acme.test (<a href="/admin/customers/delivery/{delivery.pk}/change/">' in page

    # a second click is a second message, not deduplicated
    client.post(f"/admin/messaging/templates/{welcome.pk}/send-test/", {"customer": customer.pk})
    assert Delivery.objects.count() == 2 and len(mail.outbox) == 2


def test_the_test_send_is_listed_in_the_deliveries_list(client):
    welcome = template()
    customer = CustomerFactory(first_name="Ana")
    login(client, "marketer", email="me@acme.test")
    client.post(f"/admin/messaging/templates/{welcome.pk}/send-test/", {"customer": customer.pk})
    delivery = Delivery.objects.get()

    listing = client.get("/admin/customers/delivery/?q=me@acme.test")

    assert listing.status_code == 200
    assert f"/admin/customers/delivery/{delivery.pk}/change/" in listing.content.decode()


def test_a_permanent_provider_refusal_fails_the_delivery_and_the_page_says_why(client, smtp_sink):
    smtp_sink.replies = ["550 Mailbox unavailable"]
    welcome = template()
    login(client, "marketer", email="me@acme.test")

    response = client.post(
        f"/admin/messaging/templates/{welcome.pk}/send-test/", {"customer": CustomerFactory().pk}, follow=True
    )

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.reason) == ("failed", "provider_error")
    assert "Test to me@acme.test not sent: SMTP 550" in response.content.decode()
    assert smtp_sink.messages == []


def test_a_user_who_may_not_change_templates_is_refused_and_nothing_is_queued(client):
    welcome = template()
    login(client, "analyst", email="an@acme.test")

    response = client.post(f"/admin/messaging/templates/{welcome.pk}/send-test/", {"customer": CustomerFactory().pk})

    assert response.status_code == 403
    assert not Delivery.objects.exists()
    assert mail.outbox == []


def test_a_user_without_an_address_is_told_and_nothing_is_queued(client):
    welcome = template()
    login(client, "marketer", email="")

    response = client.post(
        f"/admin/messaging/templates/{welcome.pk}/send-test/", {"customer": CustomerFactory().pk}, follow=True
    )

    assert "Test not sent: user: your account has no e-mail address" in response.content.decode()
    assert not Delivery.objects.exists()
