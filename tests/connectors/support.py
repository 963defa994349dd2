"""
Helpers of the connectors' tests (no tests here): a connected shop and signed deliveries of the fixtures; for the
push tests, the shop with pushes back switched on against the fake Admin API, and its sample customer, linked.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from apps.connectors.models import Push
from apps.connectors.services.connections import connection_create, connection_update
from apps.connectors.services.push import pushes_send_due
from apps.customers.models import Customer
from tests.automations.test_engine_support import RecordingQueue

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "shpss_0123456789abcdef0123456789abcdef"
WOO_SECRET = "woo-signing-secret-for-tests"
PUSH_TOKEN = "shpat_push_0123456789"
SHOPIFY_ID = "706405506930370084"  # the customer of the customers/create sample
GRAPHQL = "/admin/api/2025-01/graphql.json"
WOO_API_KEY = "ck_key:cs_secret"
_ids = itertools.count(1)


def fixture(platform: str, topic: str) -> dict[str, Any]:
    """A documented sample payload (see fixtures/README.md), as a fresh dict a test may change."""
    name = topic.replace("/", "__") + ".json"
    return copy.deepcopy(json.loads((FIXTURES / platform / name).read_text()))


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post_shopify(
    client: Client,
    connection: Any,
    topic: str,
    payload: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    secret: str = SECRET,
    signature: str | None = None,
    domain: str | None = None,
) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "HTTP_X_SHOPIFY_TOPIC": topic,
        "HTTP_X_SHOPIFY_HMAC_SHA256": sign(secret, body) if signature is None else signature,
        "HTTP_X_SHOPIFY_SHOP_DOMAIN": domain or connection.shop_domain,
        "HTTP_X_SHOPIFY_WEBHOOK_ID": webhook_id or f"wh-{next(_ids)}",
        "HTTP_X_SHOPIFY_API_VERSION": "2025-01",
    }
    return client.post(f"/hooks/shopify/{connection.hook_key}/", data=body, content_type="application/json", **headers)


def post_woo(
    client: Client, connection: Any, topic: str, payload: dict[str, Any], *, delivery_id: str | None = None
) -> Any:
    body = json.dumps(payload).encode()
    headers = {
        "HTTP_X_WC_WEBHOOK_TOPIC": topic,
        "HTTP_X_WC_WEBHOOK_SIGNATURE": sign(WOO_SECRET, body),
        "HTTP_X_WC_WEBHOOK_SOURCE": f"https://{connection.shop_domain}/",
        "HTTP_X_WC_WEBHOOK_ID": "12",
        "HTTP_X_WC_WEBHOOK_DELIVERY_ID": delivery_id or f"d-{next(_ids)}",
    }
    return client.post(
        f"/hooks/woocommerce/{connection.hook_key}/", data=body, content_type="application/json", **headers
    )


@pytest.fixture
def shop(db):
    return connection_create(
        name="Apple shop",
        platform="shopify",
        shop_domain="apple.myshopify.com",
        signing_secret=SECRET,
        shop_currency="USD",
    )


@pytest.fixture
def woo_shop(db):
    return connection_create(
        name="Woo shop",
        platform="woocommerce",
        shop_domain="example.com",
        signing_secret=WOO_SECRET,
        shop_currency="USD",
    )


@pytest.fixture
def deliver(client, queue: RecordingQueue, django_capture_on_commit_callbacks):
    """Post a signed Shopify delivery as the shop does, then run the worker until the queue is empty."""

    def run(connection: Any, topic: str, payload: dict[str, Any] | bytes, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            if connection.platform == "shopify":
                response = post_shopify(client, connection, topic, payload, **kwargs)
            else:
                response = post_woo(client, connection, topic, payload, **kwargs)
        queue.drain()
        return response

    return run


@pytest.fixture
def pushing(shop, fake_shop):
    """The Shopify shop with consents pushed back to it (`push_unsubscribes`), its Admin API the fake shop's."""
    return connection_update(connection=shop, push_unsubscribes=True, api_token=PUSH_TOKEN, api_base_url=fake_shop.url)


def shop_customer(deliver: Any, connection: Any, *, email_state: str | None = None) -> Customer:
    """
    The customers/create sample delivered and linked: its e-mail consent as documented (subscribed, single opt-in),
    or `email_state` with no opt-in level.
    """
    body = fixture("shopify", "customers/create")
    if email_state is not None:
        body["email_marketing_consent"] = {"state": email_state, "opt_in_level": None, "consent_updated_at": None}
    deliver(connection, "customers/create", body)
    return Customer.objects.get(external_id=f"shopify:{connection.shop_domain}:{SHOPIFY_ID}")


def woo_pushing(woo_shop: Any, fake_shop: Any, **consent_meta: str) -> Any:
    """The WooCommerce shop with consents pushed to the fake shop's REST API, in the meta field `newsletter_optin`."""
    return connection_update(
        connection=woo_shop,
        push_unsubscribes=True,
        api_token=WOO_API_KEY,
        api_base_url=fake_shop.url,
        consent_meta_key="newsletter_optin",
        **consent_meta,
    )


def woo_customer(deliver: Any, connection: Any) -> Customer:
    """The customer.created sample (customer 25) delivered and linked."""
    deliver(connection, "customer.created", fixture("woocommerce", "customer.created"))
    return Customer.objects.get(external_id=f"woocommerce:{connection.shop_domain}:25")


def assert_sent_on_retry(fake_shop: Any, due: datetime) -> None:
    """The one push failed once and is retried at `due` (not a second earlier): sent, the same request again."""
    assert pushes_send_due(now=due - timedelta(seconds=1)) == {}
    assert pushes_send_due(now=due) == {"sent": 1}
    push = Push.objects.get()
    assert (push.status, push.attempts, push.last_error) == ("sent", 2, "")
    assert len(fake_shop.requests) == 2
    assert fake_shop.requests[0]["json"] == fake_shop.requests[1]["json"]
