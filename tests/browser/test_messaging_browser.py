"""Messaging in Chromium: a workflow e-mails a customer with a template in the brand and messages them in-app;
the marketer watches the deliveries appear on the customer page, the cockpit shows the in-app message with its
unread count and marks it read (1440 and 390 px). Every wait is for an element or a navigation, never a sleep."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from apps.automations.services import workflow_activate, workflow_create
from apps.customers import services as customer_services
from apps.customers.messaging.models import Delivery
from apps.customers.messaging.templating import services as templates
from apps.loyalty import services as loyalty_services
from apps.loyalty.cockpit import cockpit_path
from tests.customers.messaging.support import template_published
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_a_workflows_email_and_in_app_message_on_the_customer_page_and_in_the_cockpit(
    live_server, page, screenshot, settings
):
    settings.TASKS_SYNC = True
    templates.brand_update(
        fields={"name": "Acme Coffee", "footer_text": "Acme Coffee, 1 Bean Street", "sender_email": "club@acme.test"}
    )
    template_published(
        "welcome", subject="Welcome, {{ customer.first_name }}", body="Glad you joined, **{{ customer.first_name }}**."
    )
    workflow = workflow_create(
        name="Welcome messages",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.activated"},
            "steps": [
                {
                    "id": "mail",
                    "action": "notify.email",
                    "params": {"template": "welcome"},
                },
                {
                    "id": "inbox",
                    "action": "notify.in_app",
                    "params": {"subject": "Your welcome gift", "body": "Double points on your next order this week."},
                },
            ],
        },
    )
    workflow_activate(workflow=workflow)
    customer = CustomerFactory(first_name="Grace", last_name="Hopper", email="grace@example.com")
    membership, _ = loyalty_services.member_join(customer=customer, program=program_make(name="Coffee Club"))

    # the marketer opens the customer page: no message yet
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill(UserFactory(username="root").username)
    page.get_by_label("Password").fill("pass12345")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.goto(f"{live_server.url}/admin/console/customers/{customer.pk}/")
    expect(page.get_by_text("No messages recorded for this customer.")).to_be_visible()

    # the customer is activated: the workflow sends the templated e-mail (in the brand) and the in-app message
    customer_services.customer_activate(customer=customer)
    assert [(message.subject, message.from_email) for message in mail.outbox] == [
        ("Welcome, Grace", "Acme Coffee <club@acme.test>")
    ]
    html, _kind = mail.outbox[0].alternatives[0]
    assert "<strong>Grace</strong>" in html and "Acme Coffee, 1 Bean Street" in html
    assert Delivery.objects.filter(customer=customer, status="sent").count() == 2
    assert Delivery.objects.get(customer=customer, channel="email").template_key == "welcome"

    # ... and both deliveries appear on the customer page
    page.reload()
    deliveries = page.get_by_test_id("deliveries")
    expect(deliveries.locator("tbody tr")).to_have_count(2)
    expect(deliveries).to_contain_text("Welcome, Grace")
    expect(deliveries.locator("tr[data-status='sent']")).to_have_count(2)
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"messaging-customer-{width}")

    # the customer opens their cockpit: one unread message; marking it read clears the count
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(live_server.url + cockpit_path(membership))
    expect(page.get_by_test_id("inbox-unread")).to_have_text("1")
    expect(page.get_by_test_id("inbox-message")).to_contain_text("Your welcome gift")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"messaging-cockpit-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})
    # the form posts and the cockpit comes back: wait for that navigation, not for a load state it already has
    with page.expect_navigation():
        page.get_by_role("button", name="Mark as read").click()
    expect(page.get_by_test_id("inbox-unread")).to_have_text("0")
    expect(page.get_by_role("button", name="Mark as read")).to_have_count(0)
    assert Delivery.objects.get(customer=customer, channel="in_app").read_at is not None
