"""Demo data for `manage.py load_demo`: a connected demo Shopify shop with one simulated delivery. Idempotent."""

import json
import secrets
from typing import TextIO

from django.db import transaction

from loyalty_site.lib.crypto import secret_decrypt
from loyalty_site.lib.money import shop_currency

from .models import StoreConnection, WebhookDelivery
from .services.connections import connection_create
from .services.deliveries import delivery_process, delivery_receive, signature_expected

DOMAIN = "demo-shop.myshopify.com"
PRODUCT = {
    "id": 788032119674292922,
    "title": "Example T-Shirt",
    "tags": "example, mens, t-shirt",
    "updated_at": "2026-01-05T10:00:00-05:00",
    "variants": [{"id": 642667041472713922, "price": "19.99", "sku": "example-shirt-s"}],
}


def load(*, stdout: TextIO) -> None:
    with transaction.atomic():
        connection = StoreConnection.objects.filter(platform="shopify", shop_domain=DOMAIN).first()
        if connection is None:
            connection = connection_create(
                name="Demo Shopify shop",
                platform="shopify",
                shop_domain=DOMAIN,
                signing_secret=secrets.token_hex(16),
                shop_currency=shop_currency(),
            )
    if not WebhookDelivery.objects.filter(connection=connection, webhook_id="demo-products-create").exists():
        body = json.dumps(PRODUCT).encode()
        signature = signature_expected(secret=secret_decrypt(connection.signing_secret), body=body)
        received = delivery_receive(
            connection=connection,
            topic="products/create",
            webhook_id="demo-products-create",
            body=body,
            signature=signature,
        )
        if received.delivery_id is not None:
            delivery_process(delivery_id=received.delivery_id)
    stdout.write(f"Store connectors: {connection} with {connection.deliveries.count()} delivery\n")
