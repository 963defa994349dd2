"""Messaging in Chromium: a workflow e-mails and messages a customer in-app; the delivery shows on the customer
page, the cockpit shows the in-app message with its unread count and marks it read (1440 and 390 px)."""

import pytest
from django.core import mail

from apps.automations.services import workflow_activate, workflow_create
from apps.customers import services as customer_services
from apps.customers.messaging.models import Delivery
from apps.loyalty import services as loyalty_services
from apps.loyalty.cockpit import cockpit_path
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_a_workflows_email_and_in_app_message_on_the_customer_page_and_in_the_cockpit(
    live_server, page, screenshot, settings
):
    settings.TASKS_SYNC = True
    workflow = workflow_create(
        name="Welcome messages",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.activated"},
            "steps": [
                {
                    "id": "mail",
                    "action": "notify.email",
                    "params": {"subject": "Welcome, {{ customer.first_name }}", "body": "Glad you joined."},
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
    customer_services.customer_activate(customer=customer)
    assert [message.subject for message in mail.outbox] == ["Welcome, Grace"]
    assert Delivery.objects.filter(customer=customer, status="sent").count() == 2

    # the marketer sees both deliveries on the customer page
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill(UserFactory(username="root").username)
    page.get_by_label("Password").fill("pass12345")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")
    page.goto(f"{live_server.url}/admin/console/customers/{customer.pk}/")
    deliveries = page.get_by_test_id("deliveries")
    assert deliveries.locator("tbody tr").count() == 2
    assert "Welcome, Grace" in deliveries.inner_text()
    assert deliveries.locator("tr[data-status='sent']").count() == 2
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"messaging-customer-{width}")

    # the customer opens their cockpit: one unread message; marking it read clears the count
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(live_server.url + cockpit_path(membership))
    assert page.get_by_test_id("inbox-unread").inner_text() == "1"
    message = page.get_by_test_id("inbox-message")
    assert "Your welcome gift" in message.inner_text()
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), width
        screenshot(f"messaging-cockpit-{width}")
    page.get_by_role("button", name="Mark as read").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("inbox-unread").inner_text() == "0"
    assert page.get_by_role("button", name="Mark as read").count() == 0
    assert Delivery.objects.get(customer=customer, channel="in_app").read_at is not None
