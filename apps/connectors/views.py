"""
The webhook endpoints the shops call: `/hooks/shopify/<key>/` and `/hooks/woocommerce/<key>/`.

No session, no token: the caller is authenticated by the HMAC of the raw body with the connection's
signing secret (checked in constant time before anything is parsed or stored; a bad one is 401 and
nothing is written). The body is bounded before it is read (413). The answer is 200 as soon as the
delivery is stored; processing happens in a task, so a slow database never makes the shop retry.
"""

from __future__ import annotations

import logging
import re

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from loyalty_site.lib.request_body import body_read_capped
from loyalty_site.lib.tasks import db_error_is_transient, retry_transient

from .choices import Platform
from .models import StoreConnection
from .services.deliveries import SignatureInvalid, delivery_receive, max_body_bytes

logger = logging.getLogger(__name__)

# WooCommerce pings a new webhook with a form body `webhook_id=<n>` (no topic): answered 200, stored nowhere.
WOO_PING = re.compile(rb"webhook_id=\d{1,20}")


def _refuse(status: int, error: str, message: str) -> JsonResponse:
    return JsonResponse({"error": error, "message": message}, status=status)


def _receive(request: HttpRequest, *, platform: str, key: str) -> JsonResponse:
    """
    A lost database connection is transient: the lookup and the store are tried once more on a fresh one (the
    store is idempotent: one row per webhook id), then answered 503 with Retry-After — never a 500 — so the
    shop sends it again later. The body is read first (bounded; a stream is read once).
    """
    body = body_read_capped(request, max_body_bytes())
    if body is None:
        return _refuse(413, "too_large", f"The body is larger than {max_body_bytes()} bytes.")
    try:
        return retry_transient(
            lambda: _receive_once(request, body, platform=platform, key=key), attempts=2, base_delay=0.1, what="webhook"
        )
    except DatabaseError as error:
        if not db_error_is_transient(error):
            raise
        logger.warning("connectors: webhook answered 503 after a transient database error: %s", error)
        response = _refuse(503, "unavailable", "The database is unavailable for a moment; send it again later.")
        response["Retry-After"] = "5"
        return response


def _receive_once(request: HttpRequest, body: bytes, *, platform: str, key: str) -> JsonResponse:
    connection = StoreConnection.objects.filter(hook_key=key, platform=platform).first()
    if connection is None:
        return _refuse(404, "not_found", "No connection answers at this address.")
    if platform == Platform.SHOPIFY:
        topic = request.headers.get("X-Shopify-Topic", "")
        webhook_id = request.headers.get("X-Shopify-Webhook-Id", "")
        signature = request.headers.get("X-Shopify-Hmac-Sha256", "")
        domain = request.headers.get("X-Shopify-Shop-Domain", "")
    else:
        topic = request.headers.get("X-WC-Webhook-Topic", "")
        webhook_id = request.headers.get("X-WC-Webhook-Delivery-ID", "")
        signature = request.headers.get("X-WC-Webhook-Signature", "")
        domain = ""
        if not topic and WOO_PING.fullmatch(body):
            return JsonResponse({"status": "pong"})
    if domain and domain.strip().lower() != connection.shop_domain:
        logger.warning("connectors: delivery for %r at the address of %s refused", domain[:100], connection.shop_domain)
        return _refuse(401, "wrong_shop", "This address belongs to another shop.")
    try:
        received = delivery_receive(
            connection=connection, topic=topic.strip(), webhook_id=webhook_id.strip(), body=body, signature=signature
        )
    except SignatureInvalid:
        return _refuse(401, "invalid_signature", "The HMAC signature does not match this connection's secret.")
    return JsonResponse({"status": "duplicate" if received.duplicate else "accepted"})


@csrf_exempt
@require_POST
def shopify_webhook(request: HttpRequest, key: str) -> JsonResponse:
    """Authenticated by X-Shopify-Hmac-Sha256 (public endpoint: no permission applies; see the module)."""
    return _receive(request, platform=Platform.SHOPIFY, key=key)


@csrf_exempt
@require_POST
def woocommerce_webhook(request: HttpRequest, key: str) -> JsonResponse:
    """Authenticated by X-WC-Webhook-Signature (public endpoint: no permission applies; see the module)."""
    return _receive(request, platform=Platform.WOOCOMMERCE, key=key)
