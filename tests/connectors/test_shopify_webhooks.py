"""Shopify's documented sample payloads, signed and posted as the shop does, through the worker."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.automations.models import WorkflowRun
from apps.connectors.models import RemoteRecord, WebhookDelivery
from apps.connectors.services.deliveries import deliveries_retry_due
from apps.customers.models import Cart, Customer, DomainEvent, DraftOrder, Order, Product, Refund
from apps.tagging.models import CustomerTag, ProductTag
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.connectors.support import fixture, post_shopify
from tests.factories import CustomerFactory, StoreFactory

pytestmark = pytest.mark.django_db

CAUSE = "connector:shopify:apple.myshopify.com"


def ext(remote_id) -> str:
    return f"shopify:apple.myshopify.com:{remote_id}"


def tags_of(customer) -> list[str]:
    return sorted(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True))


def runs(workflow) -> list[str]:
    return list(WorkflowRun.objects.filter(workflow=workflow).values_list("status", flat=True))


def open_order() -> dict:
    """The orders/create sample as a live order (the documented sample is a voided, cancelled test order)."""
    body = fixture("shopify", "orders/create")
    body.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "paid"})
    return body


def test_orders_create_sample_records_customer_order_lines_and_fires_workflows(shop, deliver):
    bought = active_workflow("Shopify buyer", "order.created", [add_tags("Shopify buyer")])
    cancelled = active_workflow("Cancelled", "order.cancelled", [add_tags("Cancelled order")])

    response = deliver(shop, "orders/create", fixture("shopify", "orders/create"))

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    customer = Customer.objects.get(external_id=ext(115310627314723954))
    assert (customer.email, customer.first_name, customer.last_name, customer.country) == (
        "john@test.com",
        "John",
        "Smith",
        "CA",
    )
    assert customer.accepts_marketing is False  # accepts_marketing false: no consent, no unsubscribe event
    order = Order.objects.get(external_id=ext(820982911946154508))
    assert order.customer == customer
    assert (order.currency, order.total, order.discount_total, order.shipping_total, order.tax_total) == (
        "USD",
        Decimal("254.98"),
        Decimal("5.00"),
        Decimal("10.00"),
        Decimal("0.00"),
    )
    assert order.total_shop == Decimal("254.98")
    assert list(order.lines.values_list("title", "quantity", "unit_price")) == [
        ("Aviator sunglasses", 1, Decimal("89.99")),
        ("Mid-century lounger", 1, Decimal("159.99")),
    ]
    assert Product.objects.get(external_id=ext(788032119674292922)).title == "Aviator sunglasses"
    assert (order.channel, order.shipping_country, order.status) == ("online", "US", "cancelled")
    assert order.placed_at == datetime(2020, 9, 10, 8, 26, 51, tzinfo=UTC)
    assert order.cancelled_at == datetime(2020, 9, 10, 8, 26, 51, tzinfo=UTC)
    assert set(
        DomainEvent.objects.filter(name__in=["order.created", "order.cancelled"]).values_list("cause", flat=True)
    ) == {CAUSE}
    assert runs(bought) == ["succeeded"] and runs(cancelled) == ["succeeded"]
    assert tags_of(customer) == ["Cancelled order", "Shopify buyer"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.topic, delivery.status, delivery.attempts) == ("orders/create", "processed", 1)
    assert delivery.outcome["order_id"] == order.pk and delivery.outcome["cancelled"] is True
    shop.refresh_from_db()
    assert shop.last_delivery_at is not None and shop.deliveries_count == 1 and shop.error_count == 0


def test_the_same_webhook_id_twice_has_one_effect(shop, deliver):
    workflow = active_workflow("Buyer", "order.created", [add_tags("Buyer")])
    first = deliver(shop, "orders/create", open_order(), webhook_id="b54557e4-c249-4b8c-b3d5-2ad5b8c5ad2a")
    second = deliver(shop, "orders/create", open_order(), webhook_id="b54557e4-c249-4b8c-b3d5-2ad5b8c5ad2a")

    assert (first.json(), second.json()) == ({"status": "accepted"}, {"status": "duplicate"})
    assert WebhookDelivery.objects.count() == 1
    assert Order.objects.count() == 1
    assert runs(workflow) == ["succeeded"]


def test_the_same_order_under_other_topics_is_recorded_once(shop, deliver):
    workflow = active_workflow("Buyer", "order.created", [add_tags("Buyer")])
    for topic in ("orders/create", "orders/paid", "orders/updated"):
        deliver(shop, topic, open_order())
    assert Order.objects.count() == 1
    assert runs(workflow) == ["succeeded"]
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["processed"] * 3


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSByaWdodCBzaWduYXR1cmU=", "garbage"])
def test_a_bad_hmac_is_401_and_stores_nothing(shop, deliver, signature):
    response = deliver(shop, "orders/create", open_order(), signature=signature)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert WebhookDelivery.objects.count() == 0
    assert Customer.objects.count() == 0 and Order.objects.count() == 0


def test_a_body_signed_with_another_secret_or_altered_is_401(shop, client):
    body = b'{"id": 1}'
    assert post_shopify(client, shop, "orders/create", body, secret="other").status_code == 401
    from tests.connectors.support import SECRET, sign

    altered = post_shopify(client, shop, "orders/create", b'{"id": 2}', signature=sign(SECRET, body))
    assert altered.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_a_delivery_for_another_shop_domain_is_401(shop, client):
    response = post_shopify(client, shop, "orders/create", open_order(), domain="evil.myshopify.com")
    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_an_unknown_address_is_404_and_get_is_405(shop, client):
    assert client.post("/hooks/shopify/nope/", data=b"{}", content_type="application/json").status_code == 404
    assert client.get(f"/hooks/shopify/{shop.hook_key}/").status_code == 405
    assert (
        client.post(f"/hooks/woocommerce/{shop.hook_key}/", data=b"{}", content_type="application/json").status_code
        == 404
    )


def test_a_body_over_the_limit_is_413_before_it_is_read(shop, deliver, settings):
    settings.CONNECTORS_MAX_BODY_BYTES = 1000
    response = deliver(shop, "orders/create", open_order())
    assert response.status_code == 413
    assert WebhookDelivery.objects.count() == 0


def test_an_unknown_topic_is_accepted_stored_and_logged_not_a_500(shop, deliver, caplog):
    response = deliver(shop, "inventory_levels/update", {"inventory_item_id": 39072856, "available": 5})
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.outcome) == ("ignored", {"ignored": "unknown topic inventory_levels/update"})
    assert "unknown topic 'inventory_levels/update'" in caplog.text


def test_a_topic_the_connection_does_not_enable_is_ignored(shop, deliver):
    shop.topics = ["customers/create"]
    shop.save()
    deliver(shop, "orders/create", open_order())
    assert WebhookDelivery.objects.get().outcome == {"ignored": "topic not enabled"}
    assert Order.objects.count() == 0


def test_a_body_that_is_not_json_is_ignored_with_the_reason(shop, deliver):
    deliver(shop, "orders/create", b"<xml/>")
    assert WebhookDelivery.objects.get().outcome == {"ignored": "the body is not JSON"}
    deliver(shop, "orders/create", b"[" * 500 + b"]" * 500)
    assert "nested deeper than 100 levels" in WebhookDelivery.objects.order_by("-pk").first().outcome["ignored"]


def test_an_update_older_than_the_stored_one_is_ignored(shop, deliver):
    newer = fixture("shopify", "customers/create")
    newer.update({"email": "bob.new@biller.com", "updated_at": "2012-08-25T10:00:00-04:00", "tags": "VIP"})
    older = fixture("shopify", "customers/create")  # updated_at 2012-08-24: sent before, delivered after
    older["tags"] = "Old"

    deliver(shop, "customers/update", newer)
    deliver(shop, "customers/update", older)

    customer = Customer.objects.get(external_id=ext(706405506930370084))
    assert customer.email == "bob.new@biller.com"
    assert tags_of(customer) == ["VIP"]
    outcome = WebhookDelivery.objects.order_by("pk").last().outcome
    assert outcome == {"customer_id": customer.pk, "skipped": "older than the version already applied"}


def test_customers_create_and_enable_map_profile_consent_tags_and_account_state(shop, deliver):
    registered = active_workflow("Welcome", "customer.registered", [add_tags("Welcomed")])
    activated = active_workflow("Activated", "customer.activated", [add_tags("Has account")])
    deliver(shop, "customers/create", fixture("shopify", "customers/create"))
    customer = Customer.objects.get(external_id=ext(706405506930370084))
    assert (customer.email, customer.first_name, customer.last_name, customer.state) == (
        "bob@biller.com",
        "Bob",
        "Biller",
        "guest",  # Shopify state "disabled": no account
    )
    assert customer.accepts_marketing is True  # email_marketing_consent.state "subscribed"
    assert runs(registered) == [] and runs(activated) == []

    enabled = fixture("shopify", "customers/enable")  # the documented sample (its "state" reads "disabled")
    enabled["state"] = "enabled"
    deliver(shop, "customers/enable", enabled)
    customer.refresh_from_db()
    assert customer.state == "registered"
    assert runs(registered) == ["succeeded"] and runs(activated) == ["succeeded"]
    assert tags_of(customer) == ["Has account", "Welcomed"]


def test_unsubscribing_in_the_shop_fires_customer_unsubscribed_once(shop, deliver):
    unsubscribed = active_workflow("Unsub", "customer.unsubscribed", [add_tags("Unsubscribed")])
    deliver(shop, "customers/create", fixture("shopify", "customers/create"))
    for minute in (10, 20):
        body = fixture("shopify", "customers/create")
        body["updated_at"] = f"2012-08-24T14:{minute}:46-04:00"
        body["email_marketing_consent"]["state"] = "unsubscribed"
        deliver(shop, "customers/update", body)
    customer = Customer.objects.get()
    assert customer.accepts_marketing is False and customer.unsubscribed_at is not None
    assert runs(unsubscribed) == ["succeeded"]


def test_shop_tag_changes_apply_as_differences(shop, deliver):
    body = fixture("shopify", "customers/create")
    body["tags"] = "VIP, Newsletter"
    deliver(shop, "customers/create", body)
    customer = Customer.objects.get()
    from apps.tagging.services import tags_add

    tags_add(customer=customer, names=["Workflow tag"], source="workflow", source_ref="workflow_run:1")
    body = fixture("shopify", "customers/create")
    body.update({"tags": "VIP, Wholesale", "updated_at": "2012-08-25T10:00:00-04:00"})
    deliver(shop, "customers/update", body)
    assert tags_of(customer) == ["VIP", "Wholesale", "Workflow tag"]  # the shop's removal, not our own tag
    assert RemoteRecord.objects.get(kind="customer").remote_tags == ["VIP", "Wholesale"]


def test_refunds_create_refunds_the_amount_of_its_transactions(shop, deliver):
    refunded = active_workflow("Refunded", "order.refunded", [add_tags("Refunded")])
    deliver(shop, "orders/create", open_order())
    deliver(shop, "refunds/create", fixture("shopify", "refunds/create"))
    deliver(shop, "refunds/create", fixture("shopify", "refunds/create"))  # another delivery of the same refund

    order = Order.objects.get()
    refund = Refund.objects.get()
    assert (refund.amount, refund.amount_shop, refund.reason, refund.external_id) == (
        Decimal("89.99"),
        Decimal("89.99"),
        "Things were damaged",
        ext(890088186047892319),
    )
    assert (order.refunded_total, order.status) == (Decimal("89.99"), "partially_refunded")
    assert order.customer.refunded_total == Decimal("89.99")
    assert runs(refunded) == ["succeeded"]


def test_a_refund_before_its_order_is_retried_until_the_order_arrives(shop, deliver, queue):
    deliver(shop, "refunds/create", fixture("shopify", "refunds/create"))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "820982911946154508 has not been received yet" in delivery.error
    deliver(shop, "orders/create", open_order())

    assert deliveries_retry_due(now=delivery.next_attempt_at + timedelta(seconds=1)) == 1
    queue.drain()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("processed", 2)
    assert Refund.objects.get().amount == Decimal("89.99")
    shop.refresh_from_db()
    assert shop.error_count == 1 and "refunds/create" in shop.last_error


def test_checkouts_become_abandoned_carts(shop, deliver):
    abandoned = active_workflow("Cart", "cart.abandoned", [add_tags("Abandoned cart")])
    deliver(shop, "checkouts/create", fixture("shopify", "checkouts/create"))
    cart = Cart.objects.get(external_id=ext("123123123"))
    assert cart.customer.external_id == ext(603851970716743426)
    assert (cart.currency, cart.total, cart.abandoned_at, cart.recovered_at) == (
        "USD",
        Decimal("249.98"),
        datetime(2022, 1, 1, 0, 0, tzinfo=UTC),
        None,
    )
    assert [(line["title"], line["quantity"], line["unit_price"]) for line in cart.lines] == [
        ("Aviator sunglasses", 1, "89.99"),
        ("Mid-century lounger", 1, "159.99"),
    ]
    assert cart.checkout_url.startswith("https://checkout.local/548380009/checkouts/123123123/recover")
    assert runs(abandoned) == ["succeeded"]

    completed = fixture("shopify", "checkouts/update")  # the documented sample: the same token, not completed
    completed.update({"completed_at": "2022-01-01T10:00:00-05:00", "updated_at": "2022-01-01T10:00:00-05:00"})
    deliver(shop, "checkouts/update", completed)
    cart.refresh_from_db()
    assert cart.recovered_at == datetime(2022, 1, 1, 15, 0, tzinfo=UTC)
    assert runs(abandoned) == ["succeeded"]


def test_draft_orders_create_records_a_draft_and_its_customer_tags(shop, deliver):
    drafted = active_workflow("Draft", "draft_order.created", [add_tags("Has draft")])
    deliver(shop, "draft_orders/create", fixture("shopify", "draft_orders/create"))
    draft = DraftOrder.objects.get(external_id=ext(1069920508))
    assert (draft.currency, draft.total, draft.total_shop) == ("USD", Decimal("179.98"), Decimal("179.98"))
    assert draft.lines[0]["title"] == "Aviator sunglasses" and draft.lines[0]["quantity"] == 2
    assert tags_of(draft.customer) == ["Has draft", "Léon", "Noël"]
    assert runs(drafted) == ["succeeded"]


def test_products_create_and_update_keep_title_price_and_tags(shop, deliver):
    deliver(shop, "products/create", fixture("shopify", "products/create"))
    product = Product.objects.get(external_id=ext(788032119674292922))
    assert (product.title, product.price, product.sku) == ("Example T-Shirt", Decimal("19.99"), "example-shirt-s")
    assert sorted(ProductTag.objects.filter(product=product).values_list("tag__name", flat=True)) == [
        "example",
        "mens",
        "t-shirt",
    ]
    updated = fixture("shopify", "products/update")  # the documented sample (2026-07: its variants have no sku)
    updated.update({"tags": "mens, sale", "updated_at": "2022-01-05T10:00:00-05:00"})
    deliver(shop, "products/update", updated)
    assert sorted(ProductTag.objects.filter(product=product).values_list("tag__name", flat=True)) == ["mens", "sale"]


def test_a_pos_order_gets_channel_pos_and_its_store(shop, deliver):
    store = StoreFactory(code="shopify-655441491")
    body = open_order()
    body.update({"source_name": "pos", "location_id": 655441491})
    deliver(shop, "orders/create", body)
    order = Order.objects.get()
    assert (order.channel, order.store) == ("pos", store)


def test_presentment_money_is_the_order_currency_and_shop_money_its_shop_total(shop, deliver):
    body = open_order()
    body["presentment_currency"] = "EUR"
    body["total_price_set"]["presentment_money"] = {"amount": "236.10", "currency_code": "EUR"}
    for line in body["line_items"]:
        line["price_set"]["presentment_money"]["currency_code"] = "EUR"
    deliver(shop, "orders/create", body)
    order = Order.objects.get()
    assert (order.currency, order.total, order.total_shop) == ("EUR", Decimal("236.10"), Decimal("254.98"))
    assert order.exchange_rate == Decimal("1.079966116053")
    assert order.customer.total_spent == Decimal("254.98")


def test_an_order_with_a_code_of_ours_says_so(shop, deliver):
    from apps.campaigns.promotions import services as promotions

    campaign = promotions.campaign_create(name="Summer")
    promotions.code_create(campaign=campaign, code="SUMMER24")
    body = open_order()
    body["discount_codes"] = [{"code": "summer24", "amount": "5.00", "type": "fixed_amount"}, {"code": "OTHER"}]
    deliver(shop, "orders/create", body)
    assert WebhookDelivery.objects.get().outcome["discount_codes"] == [
        {"code": "summer24", "ours": True, "campaign_id": campaign.pk},
        {"code": "OTHER", "ours": False, "campaign_id": None},
    ]


def test_an_order_with_a_code_the_customer_redeemed_here_links_the_redemption_once(shop, deliver):
    from apps.campaigns.promotions import services as promotions
    from apps.campaigns.promotions.models import Redemption
    from tests.campaigns.promo_helpers import campaign_with, cart

    # given the shop's checkout redeemed our code SUMMER24 for the customer through the promotions API
    campaign_with("Summer", code="SUMMER24", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    body = open_order()
    customer = CustomerFactory(external_id=f"shopify:apple.myshopify.com:{body['customer']['id']}")
    redemption = promotions.redemption_redeem(cart=cart(("Shoe", 1, "40.00")), customer=customer, codes=["SUMMER24"])
    now = datetime.now(UTC).isoformat()
    body.update({"created_at": now, "processed_at": now, "updated_at": now})
    body["discount_codes"] = [{"code": "summer24", "amount": "5.00", "type": "fixed_amount"}, {"code": "OTHER"}]

    # when the shop's orders/create arrives, twice (Shopify re-sends with a new webhook id)
    deliver(shop, "orders/create", body)
    deliver(shop, "orders/create", body, webhook_id="again-1")

    # then the redemption is linked to the recorded order, once
    order = Order.objects.get()
    assert order.customer_id == customer.pk
    assert Redemption.objects.get(pk=redemption.pk).order_id == order.pk
    first = WebhookDelivery.objects.order_by("pk").first()
    assert first is not None and first.outcome["redemptions_linked"] == [redemption.pk]


def test_orders_cancelled_sample_cancels_the_open_order_and_fires_order_cancelled_once(shop, deliver):
    cancelled = active_workflow("Cancelled", "order.cancelled", [add_tags("Cancelled order")])
    deliver(shop, "orders/create", open_order())
    order = Order.objects.get(external_id=ext(820982911946154508))
    assert order.status != "cancelled" and order.cancelled_at is None

    # The documented orders/cancelled sample: the same order id, cancel_reason "customer", updated later.
    deliver(shop, "orders/cancelled", fixture("shopify", "orders/cancelled"))
    deliver(shop, "orders/cancelled", fixture("shopify", "orders/cancelled"))  # another delivery of it

    order.refresh_from_db()
    assert (order.status, order.cancelled_at) == ("cancelled", datetime(2022, 1, 1, 0, 0, tzinfo=UTC))
    assert Order.objects.count() == 1
    assert runs(cancelled) == ["succeeded"]
    assert tags_of(order.customer) == ["Cancelled order"]
    assert DomainEvent.objects.get(name="order.cancelled").cause == CAUSE
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["processed"] * 3


def test_customers_update_sample_updates_the_profile_and_keeps_tags_and_consent(shop, deliver):
    body = fixture("shopify", "customers/create")
    body["tags"] = "VIP"
    deliver(shop, "customers/create", body)
    # The documented customers/update sample (API 2025-01 and later: no tags, no marketing consent — those have
    # their own topics), later than the stored version.
    deliver(shop, "customers/update", fixture("shopify", "customers/update"))

    customer = Customer.objects.get(external_id=ext(706405506930370084))
    assert (customer.email, customer.first_name, customer.last_name, customer.country) == (
        "bob@biller.com",
        "Bob",
        "Biller",
        "CA",
    )
    assert tags_of(customer) == ["VIP"]
    assert customer.accepts_marketing is True
    assert WebhookDelivery.objects.order_by("pk").last().status == "processed"


def test_orders_paid_sample_for_the_open_order_records_it_once(shop, deliver):
    bought = active_workflow("Buyer", "order.created", [add_tags("Buyer")])
    deliver(shop, "orders/create", open_order())
    # The documented orders/paid sample is the same voided, cancelled test order; as a live payment it is not
    # cancelled and is paid.
    paid = fixture("shopify", "orders/paid")
    paid.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "paid"})
    deliver(shop, "orders/paid", paid)
    deliver(shop, "orders/paid", paid)  # another delivery of the same version

    order = Order.objects.get(external_id=ext(820982911946154508))
    assert Order.objects.count() == 1 and order.status != "cancelled"
    assert runs(bought) == ["succeeded"]
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["processed"] * 3
    # The later version (updated_at 2021-12-31) brings the sample's five lines and total.
    assert (order.status, order.total) == ("paid", Decimal("404.95"))
    assert list(order.lines.values_list("title", flat=True)) == [
        "Aviator sunglasses",
        "Lens Protection Plan (2 Year)",
        "Premium Leather Case",
        "Mid-century lounger",
        "Coffee table",
    ]


def test_orders_updated_sample_applies_the_later_version_once(shop, deliver):
    deliver(shop, "orders/create", open_order())
    # The documented orders/updated sample (the same voided, cancelled test order as the other order topics),
    # as a live order: not cancelled, paid.
    updated = fixture("shopify", "orders/updated")
    updated.update({"cancelled_at": None, "cancel_reason": None, "financial_status": "paid"})
    deliver(shop, "orders/updated", updated)
    deliver(shop, "orders/updated", updated)  # the same version again

    order = Order.objects.get(external_id=ext(820982911946154508))
    assert Order.objects.count() == 1
    assert (order.status, order.total, order.lines.count()) == ("paid", Decimal("404.95"), 5)
    assert DomainEvent.objects.filter(name="order.updated").count() == 1
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["processed"] * 3
