"""Helpers of the connectors' tests (no tests here): a connected shop and signed deliveries of the fixtures."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from apps.connectors.services.connections import connection_create
from tests.automations.test_engine_support import RecordingQueue

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "shpss_0123456789abcdef0123456789abcdef"
WOO_SECRET = "woo-signing-secret-for-tests"
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
