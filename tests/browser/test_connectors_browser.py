"""A marketer connects a Shopify shop in Chromium following the on-screen instructions, a (simulated) delivery
arrives at the shown address, then a failed one is re-processed; at 1440 px and 390 px without overflow."""

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from apps.connectors.models import StoreConnection, WebhookDelivery
from apps.customers.models import Order
from tests.connectors.support import SECRET, fixture, sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _no_horizontal_overflow(page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"horizontal overflow: {widths}"


def _deliver(url: str, topic: str, payload: dict, webhook_id: str) -> int:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(SECRET, body),
            "X-Shopify-Shop-Domain": "demo-browser.myshopify.com",
            "X-Shopify-Webhook-Id": webhook_id,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # the test's own live server on 127.0.0.1
        return response.status


@pytest.mark.parametrize("width", [1440, 390])
def test_marketer_connects_a_shop_and_sees_deliveries(logged_in, live_server, sync_worker, screenshot, width):
    page = logged_in
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server.url + "/admin/connectors/storeconnection/add/")
    assert "Connect a shop in three steps" in page.inner_text("[data-testid=connect-instructions]")
    _no_horizontal_overflow(page)
    screenshot(f"connectors_add_{width}")
    page.fill("#id_name", "Browser shop")
    page.select_option("#id_platform", "shopify")
    page.fill("#id_shop_domain", "demo-browser.myshopify.com")
    page.fill("#id_shop_currency", "USD")
    page.fill("#id_signing_secret", SECRET)
    page.click("input[name=_save]")
    page.wait_for_selector("[data-testid=webhook-instructions]")
    connection = StoreConnection.objects.get()
    url = page.inner_text("[data-testid=webhook-url]").strip()
    assert url == f"{live_server.url}/hooks/shopify/{connection.hook_key}/"
    assert SECRET not in page.content()
    # Marketing consent to the shop: off by default, and WooCommerce's opt-in meta key and its values shown with
    # their defaults.
    expect(page.locator("#id_push_unsubscribes")).not_to_be_checked()
    expect(page.locator("label[for=id_push_unsubscribes]")).to_have_text("Push marketing consent")
    expect(page.locator("#id_consent_meta_key")).to_have_value("mailchimp_woocommerce_is_subscribed")
    expect(page.locator("#id_consent_meta_unsubscribed")).to_have_value("unsubscribed")
    expect(page.locator("#id_consent_meta_subscribed")).to_have_value("1")
    _no_horizontal_overflow(page)
    screenshot(f"connectors_connected_{width}")

    # The shop sends its webhooks to the address shown: an order, then a refund whose order it never sent.
    order = fixture("shopify", "orders/create")
    order.update({"cancelled_at": None, "financial_status": "paid"})
    assert _deliver(url, "orders/create", order, "wh-order") == 200
    refund = fixture("shopify", "refunds/create")
    refund["order_id"] = 1
    assert _deliver(url, "refunds/create", refund, "wh-refund") == 200
    assert Order.objects.count() == 1

    page.goto(live_server.url + "/admin/connectors/storeconnection/")
    assert "Browser shop" in page.inner_text("#result_list")
    _no_horizontal_overflow(page)
    page.goto(live_server.url + f"/admin/connectors/webhookdelivery/?connection__id__exact={connection.pk}")
    listing = page.inner_text("#result_list")
    assert "orders/create" in listing and "refunds/create" in listing and "has not been received yet" in listing
    _no_horizontal_overflow(page)
    screenshot(f"connectors_deliveries_{width}")

    failed = WebhookDelivery.objects.get(topic="refunds/create")
    page.check(f"input[name=_selected_action][value='{failed.pk}']")
    page.select_option("select[name=action]", "reprocess")
    page.click("button[name=index]")
    page.wait_for_selector("text=Queued 1 deliveries again")
    failed.refresh_from_db()
    assert failed.attempts == 1 and failed.status == "failed"  # processed again at once (sync worker): still no order
