"""WooCommerce's documented REST resources as webhook bodies, signed with X-WC-Webhook-Signature."""

from decimal import Decimal

import pytest

from apps.automations.models import WorkflowRun
from apps.connectors.models import WebhookDelivery
from apps.customers.models import Customer, Order, Refund
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.connectors.support import fixture

pytestmark = pytest.mark.django_db


def ext(remote_id) -> str:
    return f"woocommerce:example.com:{remote_id}"


def test_order_created_sample_records_a_guest_order(woo_shop, deliver):
    bought = active_workflow("Buyer", "order.created", [add_tags("Woo buyer")])
    response = deliver(woo_shop, "order.created", fixture("woocommerce", "order.created"))
    assert response.json() == {"status": "accepted"}
    order = Order.objects.get(external_id=ext(727))
    assert order.customer.external_id == ext("guest:john.doe@example.com")
    assert order.customer.email == "john.doe@example.com"
    assert (order.currency, order.total, order.shipping_total, order.tax_total, order.shipping_country) == (
        "USD",
        Decimal("29.35"),
        Decimal("10.00"),
        Decimal("1.35"),
        "US",
    )
    assert list(order.lines.values_list("title", "quantity", "unit_price")) == [
        ("Woo Single #1", 2, Decimal("3.00")),
        ("Ship Your Idea \u2013 Color: Black, Size: M Test", 1, Decimal("12.00")),
    ]
    assert WorkflowRun.objects.get(workflow=bought).status == "succeeded"


def test_customer_created_sample_registers_the_account(woo_shop, deliver):
    registered = active_workflow("Account", "customer.registered", [add_tags("Has account")])
    deliver(woo_shop, "customer.created", fixture("woocommerce", "customer.created"))
    customer = Customer.objects.get(external_id=ext(25))
    assert (customer.email, customer.first_name, customer.phone, customer.country, customer.state) == (
        "john.doe@example.com",
        "John",
        "(555) 555-5555",
        "US",
        "registered",
    )
    assert WorkflowRun.objects.get(workflow=registered).status == "succeeded"


def test_a_bad_signature_is_401_and_stores_nothing(woo_shop, client):
    response = client.post(
        f"/hooks/woocommerce/{woo_shop.hook_key}/",
        data=b'{"id": 727}',
        content_type="application/json",
        HTTP_X_WC_WEBHOOK_TOPIC="order.created",
        HTTP_X_WC_WEBHOOK_SIGNATURE="c2lnbmF0dXJl",
        HTTP_X_WC_WEBHOOK_DELIVERY_ID="1",
    )
    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_the_creation_ping_is_answered_and_stored_nowhere(woo_shop, client):
    response = client.post(
        f"/hooks/woocommerce/{woo_shop.hook_key}/",
        data=b"webhook_id=12",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.json() == {"status": "pong"}
    assert WebhookDelivery.objects.count() == 0


def test_the_same_delivery_id_twice_has_one_effect(woo_shop, deliver):
    deliver(woo_shop, "order.created", fixture("woocommerce", "order.created"), delivery_id="abc")
    second = deliver(woo_shop, "order.created", fixture("woocommerce", "order.created"), delivery_id="abc")
    assert second.json() == {"status": "duplicate"}
    assert Order.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_order_updated_cancels_refunds_and_ignores_older_versions(woo_shop, deliver):
    deliver(woo_shop, "order.created", fixture("woocommerce", "order.created"))
    refunded = fixture("woocommerce", "order.updated")
    refunded.update(
        {
            "date_modified_gmt": "2017-03-23T10:00:00",
            "refunds": [{"id": 726, "reason": "Broken", "total": "-10.00"}],
        }
    )
    deliver(woo_shop, "order.updated", refunded)
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason, refund.external_id) == (Decimal("10.00"), "Broken", ext("refund-726"))

    stale = fixture("woocommerce", "order.updated")
    stale.update({"status": "cancelled", "date_modified_gmt": "2017-03-22T20:00:00"})
    deliver(woo_shop, "order.updated", stale)
    assert Order.objects.get().status == "partially_refunded"

    cancelled = fixture("woocommerce", "order.updated")
    cancelled.update({"status": "cancelled", "date_modified_gmt": "2017-03-24T10:00:00"})
    deliver(woo_shop, "order.updated", cancelled)
    assert Order.objects.get().status == "cancelled"


def test_a_pending_payment_order_is_recorded_once_it_is_paid(woo_shop, deliver):
    pending = fixture("woocommerce", "order.created")
    pending["status"] = "pending"
    deliver(woo_shop, "order.created", pending)
    assert Order.objects.count() == 0
    assert WebhookDelivery.objects.get().outcome == {"skipped": "not an order yet (awaiting payment)"}
    paid = fixture("woocommerce", "order.updated")
    paid["date_modified_gmt"] = "2017-03-22T19:30:00"
    deliver(woo_shop, "order.updated", paid)
    assert Order.objects.count() == 1


def test_woo_order_of_a_registered_customer_links_the_account(woo_shop, deliver):
    deliver(woo_shop, "customer.created", fixture("woocommerce", "customer.created"))
    body = fixture("woocommerce", "order.created")
    body["customer_id"] = 25
    deliver(woo_shop, "order.created", body)
    assert Order.objects.get().customer.external_id == ext(25)
