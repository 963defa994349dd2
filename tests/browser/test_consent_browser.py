"""Consent pages in Chromium at 1440 and 390 px: the customer 360° consents, the unsubscribe and confirm pages."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent
from apps.customers.models import DomainEvent
from tests.factories import CustomerFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_HORIZONTAL_OVERFLOW = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
WIDTHS = (1440, 390)


def _fits(page, screenshot, name):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(NO_HORIZONTAL_OVERFLOW), (name, width)
        screenshot(f"{name}-{width}")


def test_the_customer_page_lists_consents_and_their_history(live_server, page, screenshot):
    customer = CustomerFactory(
        email="grace.hopper@example.com", phone="+15550100", first_name="Grace", last_name="Hopper"
    )
    consent.consent_set(
        customer=customer, channel="sms", purpose="marketing", status="granted", source="form:summer-sale"
    )
    consent.consent_set(customer=customer, channel="email", purpose="marketing", status="granted", source="api")
    consent.consent_withdraw(customer=customer, source="unsubscribe_link")
    consent.suppress("+15550100", channel="sms", reason="complaint")
    UserFactory(username="root")
    page.goto(live_server.url + "/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("pass12345")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/admin/")

    page.goto(f"{live_server.url}/admin/console/customers/{customer.pk}/")

    assert page.locator("[data-consent='email-marketing'] .console-status").text_content() == "Withdrawn"
    assert page.locator("[data-consent='sms-marketing']").text_content().count("address suppressed") == 1
    assert page.get_by_test_id("consent-history").locator("tbody tr").count() == 3
    _fits(page, screenshot, "consent-customer-360")


def test_unsubscribing_from_the_footer_link_in_a_browser(live_server, page, screenshot):
    customer = CustomerFactory(accepts_marketing=True)
    url = consent.unsubscribe_url(customer, channel="email", purpose="marketing")
    path = url.removeprefix("http://127.0.0.1:8000")

    page.goto(live_server.url + path)
    _fits(page, screenshot, "consent-unsubscribe-ask")
    page.get_by_test_id("unsubscribe-confirm").click()

    expect(page.get_by_test_id("unsubscribed")).to_be_visible()  # waits for the post's reply
    _fits(page, screenshot, "consent-unsubscribed")
    assert Consent.objects.get(customer=customer).status == "withdrawn"
    assert DomainEvent.objects.filter(customer=customer, name="customer.unsubscribed").count() == 1


def test_confirming_a_subscription_in_a_browser(live_server, page, screenshot):
    customer = CustomerFactory(email="ada@example.com", accepts_marketing=False)
    consent.request_double_opt_in(customer, source="form:newsletter")  # (autocommit: mailed at once)
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/c/" in line).strip()

    page.goto(live_server.url + link.removeprefix("http://127.0.0.1:8000"))
    _fits(page, screenshot, "consent-confirm-ask")
    page.get_by_test_id("confirm-subscription").click()

    expect(page.get_by_test_id("confirmed")).to_be_visible()  # waits for the post's reply
    _fits(page, screenshot, "consent-confirmed")
    assert Consent.objects.get(customer=customer).status == "granted"
