"""
Turn validated API payloads into service calls. Shared by the single-record endpoints and the batch
endpoints so both behave identically (same validation, same idempotency on external ids).
"""

from typing import Any

from django.db import transaction

from .. import services
from ..models import Cart, CustomerEvent, DraftOrder, Order
from ..services import LineInput
from .serializers import lines_as_json

CAUSE = "api"


def _line_inputs(lines: list[dict[str, Any]]) -> list[LineInput]:
    return [
        LineInput(
            title=line["title"], quantity=line["quantity"], unit_price=line["unit_price"], product=line["product"]
        )
        for line in lines
    ]


@transaction.atomic
def order_ingest(*, data: dict[str, Any], customer_ref: dict[str, Any], cause: str = CAUSE) -> tuple[Order, bool]:
    """Resolve (or upsert) the customer and record the order. An existing external_id → (order, False), no write."""
    if data.get("external_id"):
        existing = Order.objects.filter(external_id=data["external_id"]).first()
        if existing is not None:
            return existing, False
    customer = services.customer_resolve(**customer_ref, cause=cause)
    return services.order_create(
        customer=customer,
        currency=data["currency"],
        lines=_line_inputs(data["lines"]),
        external_id=data.get("external_id"),
        channel=data.get("channel", "online"),
        shipping_country=data.get("shipping_country", ""),
        discount_total=data.get("discount_total", 0),
        shipping_total=data.get("shipping_total", 0),
        tax_total=data.get("tax_total", 0),
        total=data.get("total"),
        placed_at=data.get("placed_at"),
        store=data.get("store"),
        cause=cause,
    )


@transaction.atomic
def draft_order_ingest(
    *, data: dict[str, Any], customer_ref: dict[str, Any], cause: str = CAUSE
) -> tuple[DraftOrder, bool]:
    if data.get("external_id"):
        existing = DraftOrder.objects.filter(external_id=data["external_id"]).first()
        if existing is not None:
            return existing, False
    customer = services.customer_resolve(**customer_ref, cause=cause)
    return services.draft_order_create(
        customer=customer,
        currency=data["currency"],
        lines=lines_as_json(data["lines"]),
        total=data.get("total"),
        external_id=data.get("external_id"),
        cause=cause,
    )


@transaction.atomic
def cart_ingest(*, data: dict[str, Any], customer_ref: dict[str, Any], cause: str = CAUSE) -> tuple[Cart, bool]:
    customer = services.customer_resolve(**customer_ref, cause=cause)
    return services.cart_upsert(
        customer=customer,
        currency=data["currency"],
        lines=lines_as_json(data["lines"]),
        external_id=data["external_id"],
        total=data.get("total"),
        checkout_url=data.get("checkout_url", ""),
        abandoned_at=data.get("abandoned_at"),
        recovered_at=data.get("recovered_at"),
        cause=cause,
    )


@transaction.atomic
def custom_event_ingest(
    *, data: dict[str, Any], customer_ref: dict[str, Any], cause: str = CAUSE
) -> tuple[CustomerEvent, bool]:
    if data.get("external_id"):
        existing = CustomerEvent.objects.filter(external_id=data["external_id"]).first()
        if existing is not None:
            return existing, False
    customer = services.customer_resolve(**customer_ref, cause=cause)
    return services.custom_event_record(
        customer=customer,
        name=data["name"],
        properties=data.get("properties") or {},
        occurred_at=data.get("occurred_at"),
        external_id=data.get("external_id"),
        cause=cause,
    )
