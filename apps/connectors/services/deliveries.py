"""
Receiving and processing webhook deliveries.

Receiving (`delivery_receive`, called by the endpoint) does the least possible before answering 200: check
the HMAC over the raw body (constant-time), insert the delivery once per webhook id, and enqueue its
processing after commit. Processing (`delivery_process`, a task) parses the stored body, reads it into the
neutral shapes and applies them through the data plane's services; a failure is recorded on the delivery
and retried with back-off (`deliveries_retry_due`), then given up (`dead`), and can be re-processed from
the console.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from loyalty_site.lib import tasks as task_queue
from loyalty_site.lib.crypto import SecretUnreadable, secret_decrypt
from loyalty_site.lib.errors import DomainError
from loyalty_site.lib.json_limits import json_text_error

from ..choices import ConnectionStatus, DeliveryStatus, Platform
from ..models import TOPICS, StoreConnection, WebhookDelivery
from . import apply, shopify, woocommerce
from .shapes import RetryLater, Unusable

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
PROCESS_TASK = "apps.connectors.tasks.delivery_process_task"


class SignatureInvalid(Exception):
    """The HMAC is missing or does not match the connection's secret: nothing is stored (401)."""


def max_body_bytes() -> int:
    return int(getattr(settings, "CONNECTORS_MAX_BODY_BYTES", 1_048_576))


def signature_expected(*, secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, raw body)) — the X-Shopify-Hmac-Sha256 and X-WC-Webhook-Signature value."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_check(*, connection: StoreConnection, body: bytes, signature: str) -> None:
    try:
        secret = secret_decrypt(connection.signing_secret)
    except SecretUnreadable:
        logger.error("connectors: the signing secret of connection %s cannot be decrypted", connection.pk)
        raise SignatureInvalid("the stored secret is unreadable") from None
    expected = signature_expected(secret=secret, body=body)
    if not signature or not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureInvalid("bad signature")


@dataclass(frozen=True)
class Received:
    delivery_id: int | None
    duplicate: bool


def delivery_receive(
    *, connection: StoreConnection, topic: str, webhook_id: str, body: bytes, signature: str
) -> Received:
    """
    Verify and store one delivery (once per webhook id) and enqueue its processing. Raises SignatureInvalid
    before anything is written. The same webhook id again is answered as a duplicate with no second effect.
    """
    signature_check(connection=connection, body=body, signature=signature)
    now = timezone.now()
    webhook_id = webhook_id[:100] or "sha256:" + hashlib.sha256(topic.encode() + b"\n" + body).hexdigest()[:64]
    # The fewest statements (each a round trip while the shop waits): the delivery's insert is the first write
    # of the transaction, so the same webhook id again (a unique violation) rolls back the whole of it and no
    # savepoint is needed; with the ORM broker the task's queue row is the second insert, in the same commit.
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                connection=connection,
                topic=topic[:64],
                webhook_id=webhook_id,
                body=body.decode("utf-8", "replace"),
                received_at=now,
            )
            # The hot connection row is written once a second at most, and only when the row read for this
            # request says so: a burst of deliveries neither waits on its lock nor pays the statement.
            seen = connection.last_delivery_at
            if seen is None or seen < now - timedelta(seconds=1):
                StoreConnection.objects.filter(pk=connection.pk).filter(
                    Q(last_delivery_at__isnull=True) | Q(last_delivery_at__lt=now - timedelta(seconds=1))
                ).update(last_delivery_at=now)
            task_queue.enqueue_on_commit(PROCESS_TASK, delivery.pk)
    except IntegrityError:  # webhook_delivery_once: this webhook id was stored already
        return Received(delivery_id=None, duplicate=True)
    return Received(delivery_id=delivery.pk, duplicate=False)


# --- Processing ----------------------------------------------------------------------------------------

Handler = Callable[[StoreConnection, dict[str, Any]], dict[str, Any]]


def _customer(reader: Callable[[dict[str, Any]], Any], *, activate: bool = False) -> Handler:
    return lambda connection, body: apply.customer_apply(connection, reader(body), activate=activate)[1]


def _woo_customer(connection: StoreConnection, body: dict[str, Any]) -> dict[str, Any]:
    """WooCommerce customers: the connection says which meta key carries the marketing opt-in."""
    shape = woocommerce.customer(
        body,
        consent_key=connection.consent_meta_key,
        consent_unsubscribed=connection.consent_meta_unsubscribed,
        consent_subscribed=connection.consent_meta_subscribed,
    )
    return apply.customer_apply(connection, shape)[1]


HANDLERS: dict[str, dict[str, Handler]] = {
    Platform.SHOPIFY: {
        "orders/create": lambda c, b: apply.order_apply(c, shopify.order(b)),
        "orders/updated": lambda c, b: apply.order_apply(c, shopify.order(b)),
        "orders/edited": lambda c, b: apply.order_edit_noted(c, shopify.order_edit(b)),
        "orders/paid": lambda c, b: apply.order_apply(c, shopify.order(b)),
        "orders/cancelled": lambda c, b: apply.order_apply(c, shopify.order(b)),
        "refunds/create": lambda c, b: apply.refund_apply(c, shopify.refund(b)),
        "customers/create": _customer(shopify.customer),
        "customers/update": _customer(shopify.customer),
        "customers/enable": _customer(shopify.customer, activate=True),
        "checkouts/create": lambda c, b: apply.cart_apply(c, shopify.checkout(b)),
        "checkouts/update": lambda c, b: apply.cart_apply(c, shopify.checkout(b)),
        "draft_orders/create": lambda c, b: apply.draft_apply(c, shopify.draft_order(b)),
        "products/create": lambda c, b: apply.product_apply(c, shopify.product(b)),
        "products/update": lambda c, b: apply.product_apply(c, shopify.product(b)),
    },
    Platform.WOOCOMMERCE: {
        "order.created": lambda c, b: apply.order_apply(c, woocommerce.order(b)),
        "order.updated": lambda c, b: apply.order_apply(c, woocommerce.order(b)),
        "customer.created": lambda c, b: _woo_customer(c, b),
        "customer.updated": lambda c, b: _woo_customer(c, b),
    },
}
assert all(set(HANDLERS[platform]) == set(TOPICS[platform]) for platform in HANDLERS)


def _body(delivery: WebhookDelivery) -> dict[str, Any]:
    problem = json_text_error(delivery.body)
    if problem is not None:
        raise Unusable(f"the body is not acceptable JSON: {problem.message}")
    try:
        parsed = json.loads(delivery.body)
    except ValueError:
        raise Unusable("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise Unusable("the body is not a JSON object")
    return parsed


def _error_text(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{field}: {' '.join(messages)}"
            for field, messages in getattr(error, "message_dict", {"": error.messages}).items()
        )
    if isinstance(error, DomainError):
        return f"{error.path}: {error.message}" if error.path else error.message
    return f"{type(error).__name__}: {error}"


def _next_attempt(attempts: int, now: datetime) -> datetime:
    return now + min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP)


def delivery_process(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """
    Apply one stored delivery (safe to run twice: a processed delivery is left alone). Returns its new status.
    Unknown or disabled topics are `ignored` (logged, never an error); a mapping failure is `failed` and
    retried with back-off up to MAX_ATTEMPTS, then `dead`.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Only the delivery's row is locked (`of`): locking the joined connection row too made a worker skip
        # every delivery of a shop while another worker's transaction held that row (they stayed `received`).
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("connection")
            .filter(pk=delivery_id, status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED])
            .first()
        )
        if delivery is None:
            return None
        connection = delivery.connection
        handler = HANDLERS.get(connection.platform, {}).get(delivery.topic)
        delivery.attempts += 1
        delivery.error = ""
        if handler is None:
            logger.warning(
                "connectors: %s sent unknown topic %r (accepted, ignored)", connection.shop_domain, delivery.topic
            )
            delivery.status, delivery.outcome = DeliveryStatus.IGNORED, {"ignored": f"unknown topic {delivery.topic}"}
        elif delivery.topic not in (connection.topics or []):
            delivery.status, delivery.outcome = DeliveryStatus.IGNORED, {"ignored": "topic not enabled"}
        elif connection.status == ConnectionStatus.PAUSED:
            delivery.status, delivery.outcome = DeliveryStatus.IGNORED, {"ignored": "connection paused"}
        else:
            try:
                with transaction.atomic():
                    outcome = handler(connection, _body(delivery))
            except Unusable as error:
                delivery.status, delivery.outcome = DeliveryStatus.IGNORED, {"ignored": str(error)}
            except (RetryLater, ValidationError, DomainError) as error:
                _failed(delivery, _error_text(error), now)
            except Exception as error:  # a bug or the database: recorded on the delivery, retried
                logger.exception("connectors: delivery %s (%s) failed", delivery.pk, delivery.topic)
                _failed(delivery, _error_text(error), now)
            else:
                delivery.status, delivery.outcome = DeliveryStatus.PROCESSED, outcome
        if delivery.status != DeliveryStatus.FAILED and delivery.status != DeliveryStatus.DEAD:
            delivery.next_attempt_at = None
        delivery.processed_at = now
        delivery.save(update_fields=["status", "outcome", "error", "attempts", "next_attempt_at", "processed_at"])
        StoreConnection.objects.filter(pk=connection.pk).update(deliveries_count=F("deliveries_count") + 1)
    return delivery.status


def _failed(delivery: WebhookDelivery, message: str, now: datetime) -> None:
    delivery.error = message[:2000]
    delivery.outcome = {}
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.DEAD
        delivery.next_attempt_at = None
    else:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = _next_attempt(delivery.attempts, now)
    StoreConnection.objects.filter(pk=delivery.connection_id).update(
        error_count=F("error_count") + 1, last_error=f"{delivery.topic}: {message}"[:2000]
    )


def deliveries_retry_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Periodic: enqueue failed deliveries whose next attempt is due, and received ones whose enqueue was lost."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            Q(status=DeliveryStatus.FAILED, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.RECEIVED, received_at__lt=now - timedelta(minutes=2))
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        task_queue.enqueue_on_commit(PROCESS_TASK, delivery_id)
    return len(due)


@transaction.atomic
def delivery_reprocess(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Console: process a failed, dead or ignored delivery again, with a fresh budget of attempts."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status == DeliveryStatus.PROCESSED:
        raise DomainError("This delivery was processed; processing it again would change nothing.", code="processed")
    delivery.status = DeliveryStatus.RECEIVED
    delivery.attempts = 0
    delivery.next_attempt_at = None
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    task_queue.enqueue_on_commit(PROCESS_TASK, delivery.pk)
    return delivery
