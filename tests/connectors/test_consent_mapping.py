"""Shops' marketing consent onto the consent model (source `connector:<id>`), from the documented payloads."""

import pytest

from apps.customers.consent import services as consent
from apps.customers.consent.models import Consent
from apps.customers.models import Customer, DomainEvent
from tests.connectors.support import fixture

pytestmark = pytest.mark.django_db


def consents(customer) -> dict[tuple[str, str], tuple[str, str]]:
    return {(row.channel, row.purpose): (row.status, row.source) for row in Consent.objects.filter(customer=customer)}


def unsubscribes(customer) -> list[str]:
    events = DomainEvent.objects.filter(customer=customer, name="customer.unsubscribed").order_by("pk")
    return [event.payload["channel"] for event in events]


def test_shopify_email_and_sms_marketing_consent_become_consents(shop, deliver):
    body = fixture("shopify", "customers/create")
    body["phone"] = "+16135551111"
    body["sms_marketing_consent"] = {"state": "pending", "opt_in_level": "confirmed_opt_in"}

    deliver(shop, "customers/create", body)

    customer = Customer.objects.get()
    source = f"connector:{shop.pk}"
    assert consents(customer) == {
        ("email", "marketing"): ("granted", source),
        ("sms", "marketing"): ("pending", source),
    }
    assert customer.accepts_marketing is True
    assert consent.allows(customer, channel="email", purpose="marketing") is None
    assert consent.allows(customer, channel="sms", purpose="marketing") == "unconfirmed"


def test_shopify_unsubscribes_fire_once_per_channel_and_not_subscribed_records_nothing(shop, deliver):
    body = fixture("shopify", "customers/create")
    body["phone"] = "+16135551111"
    body["email_marketing_consent"]["state"] = "not_subscribed"
    body["sms_marketing_consent"] = {"state": "subscribed"}
    deliver(shop, "customers/create", body)
    customer = Customer.objects.get()
    assert consents(customer) == {("sms", "marketing"): ("granted", f"connector:{shop.pk}")}
    assert customer.accepts_marketing is False and unsubscribes(customer) == []

    for minute in (10, 20):
        later = fixture("shopify", "customers/create")
        later["updated_at"] = f"2012-08-24T14:{minute}:46-04:00"
        later["email_marketing_consent"]["state"] = "not_subscribed"
        later["sms_marketing_consent"] = {"state": "unsubscribed"}
        deliver(shop, "customers/update", later)

    assert consents(customer)[("sms", "marketing")][0] == "withdrawn"
    assert ("email", "marketing") not in consents(customer)
    assert unsubscribes(customer) == ["sms"]


def test_a_shopify_order_with_accepts_marketing_false_registers_no_consent_and_no_unsubscribe(shop, deliver):
    deliver(shop, "orders/create", fixture("shopify", "orders/create"))

    customer = Customer.objects.get()
    assert customer.accepts_marketing is False
    assert Consent.objects.filter(customer=customer).count() == 0
    assert unsubscribes(customer) == []
    assert consent.allows(customer, channel="email", purpose="marketing") == "no_consent"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ([{"id": 1, "key": "mailchimp_woocommerce_is_subscribed", "value": "1"}], ("granted", None)),
        ([{"id": 1, "key": "marketing_opt_in", "value": "yes"}], ("granted", None)),
        ([{"id": 1, "key": "mailchimp_woocommerce_is_subscribed", "value": "0"}], None),
        ([], "legacy"),
    ],
)
def test_woocommerce_marketing_opt_in_from_the_customer_meta_data(woo_shop, deliver, meta, expected):
    body = fixture("woocommerce", "customer.created")
    body["meta_data"] = meta

    deliver(woo_shop, "customer.created", body)

    customer = Customer.objects.get()
    got = consents(customer).get(("email", "marketing"))
    if expected is None:
        assert got is None and customer.accepts_marketing is False
    elif expected == "legacy":  # the shop said nothing: no row, the customer keeps the platform's default
        assert got is None and customer.accepts_marketing is True
    else:
        assert got == ("granted", f"connector:{woo_shop.pk}") and customer.accepts_marketing is True


def test_woocommerce_unsubscribed_withdraws_and_fires_once(woo_shop, deliver):
    body = fixture("woocommerce", "customer.created")
    body["meta_data"] = [{"id": 1, "key": "mailchimp_woocommerce_is_subscribed", "value": "1"}]
    deliver(woo_shop, "customer.created", body)
    for modified in ("2017-03-21T20:00:00", "2017-03-21T21:00:00"):
        body = fixture("woocommerce", "customer.updated")
        body["date_modified_gmt"] = modified
        body["meta_data"] = [{"id": 1, "key": "mailchimp_woocommerce_is_subscribed", "value": "unsubscribed"}]
        deliver(woo_shop, "customer.updated", body)

    customer = Customer.objects.get()
    assert consents(customer)[("email", "marketing")] == ("withdrawn", f"connector:{woo_shop.pk}")
    assert customer.accepts_marketing is False
    assert unsubscribes(customer) == ["email"]
