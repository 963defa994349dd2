"""RFC 8058 one-click unsubscribe: headers, the signed link, the public page, once-only trigger."""

import pytest

from apps.automations.gallery import template_install
from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent
from apps.customers.models import DomainEvent
from apps.tagging.models import CustomerTag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def test_marketing_email_carries_the_one_click_headers_and_nothing_else_does():
    customer = CustomerFactory()

    headers = consent.unsubscribe_headers(customer, channel="email", purpose="marketing")

    url = consent.unsubscribe_url(customer, channel="email", purpose="marketing")
    assert url.startswith("http://127.0.0.1:8000/u/") and url.endswith("/")
    assert headers == {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert consent.unsubscribe_headers(customer, channel="email", purpose="transactional") == {}
    assert consent.unsubscribe_headers(customer, channel="sms", purpose="marketing") == {}


def test_get_shows_a_confirm_page_and_changes_nothing(client):
    customer = CustomerFactory(accepts_marketing=True)
    url = _path(consent.unsubscribe_url(customer, channel="email", purpose="marketing"))

    response = client.get(url)

    assert response.status_code == 200 and b'data-testid="unsubscribe-confirm"' in response.content
    assert not Consent.objects.filter(customer=customer).exists()
    customer.refresh_from_db()
    assert customer.accepts_marketing is True


def test_one_click_post_without_login_or_csrf_unsubscribes_once(django_capture_on_commit_callbacks):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    customer = CustomerFactory(accepts_marketing=True)
    url = _path(consent.unsubscribe_url(customer, channel="email", purpose="marketing"))

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
        second = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert (first.status_code, second.status_code) == (200, 200)
    assert b'data-testid="unsubscribed"' in first.content and b'data-testid="already-unsubscribed"' in second.content
    row = Consent.objects.get(customer=customer)
    assert (row.channel, row.purpose, row.status, row.source) == ("email", "marketing", "withdrawn", "unsubscribe_link")
    assert DomainEvent.objects.filter(customer=customer, name="customer.unsubscribed").count() == 1
    assert consent.allows(customer, channel="email", purpose="marketing") == "unsubscribed"


def test_a_tampered_token_is_refused_and_changes_nothing(client):
    customer = CustomerFactory(accepts_marketing=True)
    token = consent.unsubscribe_token(customer, channel="email", purpose="marketing")
    other = CustomerFactory(accepts_marketing=True)
    forged = token.replace(
        token.split(":")[0], consent.unsubscribe_token(other, channel="email", purpose="marketing").split(":")[0]
    )

    for bad in (forged, token[:-3] + "xyz", "nonsense", "a" * 600):
        response = client.post(f"/u/{bad}/")
        assert response.status_code == 404
    assert not Consent.objects.exists()
    assert not DomainEvent.objects.filter(name="customer.unsubscribed").exists()


def test_the_gallery_template_tags_a_customer_who_unsubscribes_by_one_click(client, fire):
    template_install(key="unsubscribed", params={"tag": "Unsubscribed"}, user=None, activate=True)
    customer = CustomerFactory(accepts_marketing=True)
    url = _path(consent.unsubscribe_url(customer, channel="email", purpose="marketing"))

    response = fire(client.post, url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert list(CustomerTag.objects.filter(customer=customer).values_list("tag__name", "source")) == [
        ("Unsubscribed", "workflow")
    ]
