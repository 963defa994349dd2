"""
Turn validated API payloads into service calls. Shared by the single-record endpoints, the batch
endpoints and the CSV import so all behave identically (same validation, same idempotency on external ids).
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction

from .. import services
from ..models import Cart, CustomerEvent, DraftOrder, Order
from ..services import LineInput
from .serializers import lines_as_json

CAUSE = "api"
Row = TypeVar("Row", bound=models.Model)


def first_writer_wins(
    model: type[Row], external_id: str | None, write: Callable[[], tuple[Row, bool]]
) -> tuple[Row, bool]:
    """
    Run `write` in a savepoint unless a row with this external id is already stored (without an external id,
    plainly in the caller's transaction). Two concurrent
    requests with one new external id both pass that check; the unique constraint lets one insert and
    the other answers with the stored row, exactly like a re-send, instead of failing with a 500.
    """
    if not external_id:
        return write()  # nothing unique to race on: no savepoint needed
    if (existing := model._default_manager.filter(external_id=external_id).first()) is not None:
        return existing, False
    try:
        with transaction.atomic():
            return write()
    except IntegrityError:
        existing = model._default_manager.filter(external_id=external_id).first()
        if existing is None:
            raise
        return existing, False


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

    def write() -> tuple[Order, bool]:
        return services.order_create(
            customer=services.customer_resolve(**customer_ref, cause=cause),
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
            exchange_rate=data.get("exchange_rate"),
            total_shop=data.get("total_shop"),
            checkout_session=data.get("checkout_session", ""),
            discount_codes=data.get("discount_codes", ()),
            cause=cause,
        )

    return first_writer_wins(Order, data.get("external_id"), write)


@transaction.atomic
def draft_order_ingest(
    *, data: dict[str, Any], customer_ref: dict[str, Any], cause: str = CAUSE
) -> tuple[DraftOrder, bool]:
    def write() -> tuple[DraftOrder, bool]:
        return services.draft_order_create(
            customer=services.customer_resolve(**customer_ref, cause=cause),
            currency=data["currency"],
            lines=lines_as_json(data["lines"]),
            total=data.get("total"),
            external_id=data.get("external_id"),
            exchange_rate=data.get("exchange_rate"),
            total_shop=data.get("total_shop"),
            cause=cause,
        )

    return first_writer_wins(DraftOrder, data.get("external_id"), write)


@transaction.atomic
def cart_ingest(*, data: dict[str, Any], customer_ref: dict[str, Any], cause: str = CAUSE) -> tuple[Cart, bool]:
    def write() -> tuple[Cart, bool]:
        return services.cart_upsert(
            customer=services.customer_resolve(**customer_ref, cause=cause),
            currency=data["currency"],
            lines=lines_as_json(data["lines"]),
            external_id=data["external_id"],
            total=data.get("total"),
            checkout_url=data.get("checkout_url", ""),
            abandoned_at=data.get("abandoned_at"),
            recovered_at=data.get("recovered_at"),
            exchange_rate=data.get("exchange_rate"),
            total_shop=data.get("total_shop"),
            cause=cause,
        )

    try:
        with transaction.atomic():
            return write()
    except IntegrityError:
        # A concurrent first write of this cart won the insert: apply ours as the update it now is.
        if not Cart.objects.filter(external_id=data["external_id"]).exists():
            raise
        return write()


def custom_event_ingest(
    *, data: dict[str, Any], customer_ref: dict[str, Any], cause: str = CAUSE
) -> tuple[CustomerEvent, bool]:
    """
    Record the event, or answer the stored one for an external id already recorded (`custom_event_record` looks
    it up itself: no look-up here first and no savepoint, three statements fewer per event POST with an external
    id). One transaction, a savepoint only inside a caller's (an Idempotency-Key); a concurrent first write of the
    same external id makes the insert fail and rolls back the whole write (a customer upserted with it too), which
    then answers the stored row, exactly like a re-send, instead of a 500.
    """
    external_id = data.get("external_id")
    try:
        with transaction.atomic():
            return services.custom_event_record(
                customer=services.customer_resolve(**customer_ref, cause=cause),
                name=data["name"],
                properties=data.get("properties") or {},
                occurred_at=data.get("occurred_at"),
                external_id=external_id,
                cause=cause,
            )
    except IntegrityError:
        existing = CustomerEvent.objects.filter(external_id=external_id).first() if external_id else None
        if existing is None:
            raise
        return existing, False
