"""
Writing the neutral shapes through the data plane's own services (`apps.customers.services`,
`apps.tagging.services`), with the connection's cause (`connector:<platform>:<shop>`): triggers, loyalty and
workflows behave exactly as for an API write. Each record is locked (`record_locked`) while it is applied,
and a version older than the one applied is skipped.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.customers import services as customers
from apps.customers.choices import CustomerState, OrderStatus
from apps.customers.consent import services as consent
from apps.customers.consent.choices import Channel, ConsentStatus, Purpose
from apps.customers.consent.models import Consent
from apps.customers.models import Customer, Order, Product, Refund, Store
from apps.tagging import services as tagging
from apps.tagging.choices import TagSource

from ..choices import RecordKind
from ..models import StoreConnection
from .records import record_applied, record_is_stale, record_locked
from .shapes import (
    CartShape,
    CustomerShape,
    DraftShape,
    LineShape,
    OrderEditShape,
    OrderShape,
    ProductShape,
    RefundShape,
    RetryLater,
)
from .shapes import Unusable as Unusable

Outcome = dict[str, Any]


def external_id(connection: StoreConnection, remote_id: str) -> str:
    """Our `external_id` for a shop record: `<platform>:<shop domain>:<id>` (ids are only unique per shop)."""
    return f"{connection.platform}:{connection.shop_domain}:{remote_id}"[:128]


# --- Customers -----------------------------------------------------------------------------------------


def _profile(shape: CustomerShape) -> dict[str, Any]:
    fields = {
        "email": shape.email,
        "phone": shape.phone,
        "first_name": shape.first_name,
        "last_name": shape.last_name,
        "country": shape.country,
    }
    return {name: value for name, value in fields.items() if value}  # never blank out what the shop left out


def _tags_sync(connection: StoreConnection, customer: Customer, record: Any, tags: list[str]) -> dict[str, list[str]]:
    """
    Apply the shop's tag changes as differences from the tags it had last time (`remote_tags`): a tag the
    shop added is added here, a tag it removed is removed here, and a delivery that only echoes what we
    pushed (our own tagsAdd coming back as customers/update) changes nothing — so it never re-triggers a
    workflow.
    """
    before = {name.lower() for name in record.remote_tags or []}
    now = {name.lower() for name in tags}
    added = [name for name in tags if name.lower() not in before]
    removed = [name for name in record.remote_tags or [] if name.lower() not in now]
    changed: dict[str, list[str]] = {}
    if added:
        rows = tagging.tags_add(customer=customer, names=added, source=TagSource.API, source_ref=connection.cause)
        changed["tags_added"] = [row.tag.name for row in rows]
    if removed:
        changed["tags_removed"] = tagging.tags_remove(
            customer=customer, names=removed, source=TagSource.API, source_ref=connection.cause
        )
    record.remote_tags = tags
    record.save(update_fields=["remote_tags", "updated_at"])
    return changed


def consent_source(connection: StoreConnection) -> str:
    """The consent source of everything a shop reports: `connector:<connection id>`."""
    return f"connector:{connection.pk}"


def _withdrawn_since(customer: Customer, channel: str, moment: datetime) -> bool:
    """True when the customer withdrew this channel's marketing consent here after `moment`."""
    return Consent.objects.filter(
        customer_id=customer.pk,
        channel=channel,
        purpose=Purpose.MARKETING,
        status=ConsentStatus.WITHDRAWN,
        withdrawn_at__gt=moment,
    ).exists()


def _granted_here_since(connection: StoreConnection, customer: Customer, channel: str, moment: datetime) -> bool:
    """True when the customer gave this channel's marketing consent here — not through this shop — after `moment`."""
    return (
        Consent.objects.filter(
            customer_id=customer.pk,
            channel=channel,
            purpose=Purpose.MARKETING,
            status=ConsentStatus.GRANTED,
            granted_at__gt=moment,
        )
        .exclude(source=consent_source(connection))
        .exists()
    )


def _consent_apply(connection: StoreConnection, customer: Customer, shape: CustomerShape) -> dict[str, str]:
    """
    The shop's marketing consent per channel (e-mail, SMS) onto the consent model, with the source
    `connector:<id>`: granted → granted; pending → pending (the shop runs its own confirmation, we send no
    link); withdrawn → withdrawn (`customer.unsubscribed` once); none → a consent given here before is
    withdrawn, a customer who never consented stays without one (no unsubscribe event).

    A grant the shop recorded before the customer unsubscribed here (its `consent_updated_at`, else the
    record's `updated_at`) is older news — typically a customers/update sent before our unsubscribe reached
    the shop — and is not applied: an unsubscribe is never undone by a stale delivery. Likewise a withdrawal
    (or no consent) the shop recorded before the customer subscribed here (not through this shop) — typically
    the echo of our earlier unsubscribe arriving after a re-subscription here — does not undo that
    subscription: the customer's latest decision wins. Returns the channels so kept, with the reason.
    """
    source = consent_source(connection)
    kept: dict[str, str] = {}
    for channel, state in shape.consent.items():
        if channel not in (Channel.EMAIL, Channel.SMS):
            continue
        if state in (ConsentStatus.GRANTED, ConsentStatus.PENDING):
            reported_at = shape.consent_at.get(channel) or shape.updated_at
            if reported_at is not None and _withdrawn_since(customer, channel, reported_at):
                kept[channel] = f"unsubscribed here after the shop's {state} consent ({reported_at.isoformat()})"
                continue
        if state in (ConsentStatus.WITHDRAWN, "none"):
            reported_at = shape.consent_at.get(channel) or shape.updated_at
            if reported_at is not None and _granted_here_since(connection, customer, channel, reported_at):
                kept[channel] = f"subscribed here after the shop's {state} consent ({reported_at.isoformat()})"
                continue
        if state in (ConsentStatus.GRANTED, ConsentStatus.PENDING, ConsentStatus.WITHDRAWN):
            consent.consent_set(
                customer=customer,
                channel=channel,
                purpose=Purpose.MARKETING,
                status=state,
                source=source,
                cause=connection.cause,
            )
        elif state == "none":
            consent.consent_flag_set(
                customer=customer, channel=channel, wanted=False, source=source, cause=connection.cause
            )
    return kept


@transaction.atomic
def customer_apply(
    connection: StoreConnection, shape: CustomerShape, *, activate: bool = False
) -> tuple[Customer, Outcome]:
    """Register or update the shop's customer (profile, tags, consent, account); `activate` for customers/enable."""
    record = record_locked(connection=connection, kind=RecordKind.CUSTOMER, remote_id=shape.remote_id)
    existing = Customer.objects.filter(external_id=external_id(connection, shape.remote_id)).first()
    if existing is not None and record_is_stale(record, shape.updated_at):
        return existing, {"customer_id": existing.pk, "skipped": "older than the version already applied"}
    outcome: Outcome = {}
    # A customer embedded in an order without its own version only fills a new customer: it never
    # overwrites a profile that a customers/update delivered.
    versioned = shape.updated_at is not None or activate
    if existing is None:
        state = CustomerState.REGISTERED if activate else shape.account_state or CustomerState.GUEST
        fields = _profile(shape)
        if shape.consent.get(Channel.EMAIL):
            # The shop says what the e-mail consent is: start from none (not the legacy default), then apply it.
            fields["accepts_marketing"] = False
        customer, created = customers.customer_upsert(
            external_id=external_id(connection, shape.remote_id), cause=connection.cause, state=state, **fields
        )
        outcome["customer_created"] = created
    else:
        customer = existing
        if versioned and _profile(shape):
            customers.customer_update(customer=customer, **_profile(shape))
    if existing is None or versioned:
        if shape.tags is not None:
            outcome.update(_tags_sync(connection, customer, record, shape.tags))
        if shape.consent:
            kept = _consent_apply(connection, customer, shape)
            if kept:
                outcome["consent_kept"] = kept
            customer.refresh_from_db(fields=["accepts_marketing", "unsubscribed_at"])
        wanted = CustomerState.REGISTERED if activate else shape.account_state
        if wanted and customer.state != wanted and customer.state in (CustomerState.GUEST, CustomerState.INVITED):
            # guest → registered fires customer.registered and customer.activated; invited → registered
            # customer.activated (customer_state_set); a registered or disabled account is never moved back.
            customers.customer_state_set(customer=customer, state=wanted, cause=connection.cause)
            outcome["account_state"] = wanted
    record_applied(record, local_id=customer.pk, updated_at=shape.updated_at)
    outcome["customer_id"] = customer.pk
    return customer, outcome


def _customer_for(connection: StoreConnection, shape: CustomerShape | None, email: str) -> Customer:
    """The customer a record belongs to: the shop's customer, else a guest known by e-mail."""
    if shape is not None:
        return customer_apply(connection, shape)[0]
    if email:
        guest, _ = customers.customer_upsert(
            external_id=external_id(connection, f"guest:{email}"),
            cause=connection.cause,
            email=email,
            state=CustomerState.GUEST,
        )
        return guest
    raise Unusable("no customer and no e-mail: nothing to attach it to")


# --- Products and lines --------------------------------------------------------------------------------


def _product_for(connection: StoreConnection, line: LineShape) -> Product | None:
    if not line.remote_product_id:
        return None
    found = Product.objects.filter(external_id=external_id(connection, line.remote_product_id)).first()
    if found is not None:
        return found
    # Known from a line only: created with the line's title; products/create and products/update fill it in.
    return customers.product_upsert(
        external_id=external_id(connection, line.remote_product_id),
        title=line.title,
        price=line.unit_price,
        sku=line.sku,
    )


@transaction.atomic
def product_apply(connection: StoreConnection, shape: ProductShape) -> Outcome:
    """products/create and products/update: the product and its tags (used by conditions and workflows)."""
    record = record_locked(connection=connection, kind=RecordKind.PRODUCT, remote_id=shape.remote_id)
    if record_is_stale(record, shape.updated_at):
        return {"product_id": record.local_id, "skipped": "older than the version already applied"}
    product = customers.product_upsert(
        external_id=external_id(connection, shape.remote_id), title=shape.title, price=shape.price, sku=shape.sku
    )
    tags = tagging.product_tags_set(product=product, names=shape.tags)
    record_applied(record, local_id=product.pk, updated_at=shape.updated_at)
    return {"product_id": product.pk, "product_tags": [tag.name for tag in tags]}


def _line_dicts(connection: StoreConnection, lines: list[LineShape]) -> list[dict[str, Any]]:
    rows = []
    for line in lines:
        product = _product_for(connection, line)
        rows.append(
            {
                "product_id": product.pk if product else None,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
            }
        )
    return rows


# --- Orders and refunds --------------------------------------------------------------------------------


def _order_lines(connection: StoreConnection, shape: OrderShape) -> list[customers.LineInput]:
    lines = [
        customers.LineInput(
            title=line.title, quantity=line.quantity, unit_price=line.unit_price, product=_product_for(connection, line)
        )
        for line in shape.lines
    ]
    if not lines:  # e.g. only a tip or a custom amount: one line carries the goods total
        goods = shape.total - shape.shipping_total - shape.tax_total + shape.discount_total
        lines = [
            customers.LineInput(title=f"Order {shape.name}".strip(), quantity=1, unit_price=max(goods, Decimal(0)))
        ]
    return lines


def _discount_codes(connection: StoreConnection, order: Order, codes: list[str]) -> list[dict[str, Any]]:
    """
    The discount codes used, and whether each is one of ours (a code of a campaign here). Linking the shop's
    use to our redemption needs the promotions' service for external redemptions (see the notes).
    """
    if not codes:
        return []
    from apps.campaigns.promotions.models import Code  # promotions are a sub-package of campaigns, below us

    ours = {code.code: code for code in Code.objects.filter(code__in=[c.upper() for c in codes])}
    return [
        {
            "code": code,
            "ours": code.upper() in ours,
            "campaign_id": getattr(ours.get(code.upper()), "campaign_id", None),
        }
        for code in codes
    ]


@transaction.atomic
def order_apply(connection: StoreConnection, shape: OrderShape) -> Outcome:
    """
    orders/create, /updated, /paid, /cancelled (and WooCommerce order.created/.updated): record the order
    once, then apply its cancellation and refunds. Re-sending any of them changes nothing more.
    """
    record = record_locked(connection=connection, kind=RecordKind.ORDER, remote_id=shape.remote_id)
    if record_is_stale(record, shape.updated_at):
        return {"order_id": record.local_id, "skipped": "older than the version already applied"}
    outcome: Outcome = {}
    order = Order.objects.filter(external_id=external_id(connection, shape.remote_id)).first()
    if order is None:
        if not shape.recordable or (shape.cancelled_at and not shape.lines and not shape.total):
            record_applied(record, local_id=None, updated_at=shape.updated_at)
            return {"skipped": "not an order yet (awaiting payment)"}
        customer = _customer_for(connection, shape.customer, shape.email)
        store = (
            Store.objects.filter(code=f"{connection.platform}-{shape.location_id}").first()
            if shape.location_id
            else None
        )
        order, _ = customers.order_create(
            customer=customer,
            currency=shape.currency,
            lines=_order_lines(connection, shape),
            external_id=external_id(connection, shape.remote_id),
            channel=shape.channel,
            shipping_country=shape.shipping_country,
            discount_total=shape.discount_total,
            shipping_total=shape.shipping_total,
            tax_total=shape.tax_total,
            total=shape.total,
            placed_at=shape.placed_at,
            store=store,
            total_shop=shape.total_shop,
            cause=connection.cause,
        )
        outcome.update({"order_created": True, "customer_id": customer.pk})
        if shape.location_id:
            outcome["location_id"] = shape.location_id
        codes = _discount_codes(connection, order, shape.discount_codes)
        if codes:
            outcome["discount_codes"] = codes
            # The shop's checkout redeemed our codes through the promotions API: link those redemptions to
            # this order (ROI reads the link), as the orders API does. Linking again is a no-op.
            from apps.campaigns.promotions.services import redemption_link_order

            linked = redemption_link_order(order=order, codes=[code["code"] for code in codes if code["ours"]])
            if linked:
                outcome["redemptions_linked"] = [redemption.pk for redemption in linked]
    else:
        if shape.customer is not None and shape.customer.updated_at is not None:
            customer_apply(connection, shape.customer)
        if shape.recordable and not shape.cancelled_at and order.status != OrderStatus.CANCELLED:
            # An edit after creation (lines, amounts): the order takes the shop's current version. The same
            # version again (a replay, or orders/paid after orders/updated) changes nothing and announces nothing.
            _, amended = customers.order_amend(
                order=order,
                lines=_order_lines(connection, shape),
                discount_total=shape.discount_total,
                shipping_total=shape.shipping_total,
                tax_total=shape.tax_total,
                total=shape.total,
                total_shop=shape.total_shop,
                cause=connection.cause,
            )
            if amended:
                order.refresh_from_db()
                outcome["order_amended"] = {"total": str(order.total), "lines": order.lines.count()}
    outcome["order_id"] = order.pk
    if shape.cancelled_at and order.status != OrderStatus.CANCELLED:
        customers.order_cancel(order=order, at=shape.cancelled_at, cause=connection.cause)
        outcome["cancelled"] = True
    refunded = [refund_id for refund in shape.refunds if (refund_id := _refund_write(connection, order, refund))]
    if refunded:
        outcome["refund_ids"] = refunded
    record_applied(record, local_id=order.pk, updated_at=shape.updated_at)
    return outcome


def order_edit_noted(connection: StoreConnection, shape: OrderEditShape) -> Outcome:
    """
    Shopify orders/edited says what an edit changed but carries no new totals; Shopify sends the edited order as
    orders/updated too, and that delivery updates the order (`order_apply`). Here: recorded in the outcome only.
    """
    order = Order.objects.filter(external_id=external_id(connection, shape.order_remote_id)).only("pk").first()
    return {
        "order_id": order.pk if order else None,
        "edit": {"additions": shape.additions, "removals": shape.removals},
        "applied_by": "orders/updated",
    }


def _refund_write(connection: StoreConnection, order: Order, shape: RefundShape) -> int | None:
    key = external_id(connection, shape.remote_id)
    if Refund.objects.filter(external_id=key).exists():
        return None
    order.refresh_from_db(fields=["status", "refunded_total", "total"])
    amount = min(shape.amount, order.refundable_amount)
    if order.status == OrderStatus.CANCELLED or amount <= 0:
        return None
    refund, _ = customers.refund_create(
        order=order, amount=amount, reason=shape.reason, external_id=key, at=shape.at, cause=connection.cause
    )
    return refund.pk


@transaction.atomic
def refund_apply(connection: StoreConnection, shape: RefundShape) -> Outcome:
    """refunds/create: the refunded amount on its order (once). Before its order arrived: retried later."""
    record = record_locked(connection=connection, kind=RecordKind.ORDER, remote_id=shape.order_remote_id)
    order = Order.objects.filter(external_id=external_id(connection, shape.order_remote_id)).first()
    if order is None:
        raise RetryLater(f"order {shape.order_remote_id} has not been received yet")
    refund_id = _refund_write(connection, order, shape)
    record_applied(record, local_id=order.pk, updated_at=None)
    if refund_id is None:
        return {"order_id": order.pk, "skipped": "already refunded, cancelled, or nothing left to refund"}
    return {"order_id": order.pk, "refund_id": refund_id}


# --- Carts and drafts ----------------------------------------------------------------------------------


@transaction.atomic
def cart_apply(connection: StoreConnection, shape: CartShape) -> Outcome:
    """checkouts/create and checkouts/update → an abandoned cart (recovered once the checkout completes)."""
    record = record_locked(connection=connection, kind=RecordKind.CHECKOUT, remote_id=shape.remote_id)
    if record_is_stale(record, shape.updated_at):
        return {"cart_id": record.local_id, "skipped": "older than the version already applied"}
    try:
        customer = _customer_for(connection, shape.customer, shape.email)
    except Unusable:
        record_applied(record, local_id=None, updated_at=shape.updated_at)
        return {"skipped": "an anonymous checkout (no customer, no e-mail)"}
    cart, created = customers.cart_upsert(
        customer=customer,
        currency=shape.currency,
        lines=_line_dicts(connection, shape.lines),
        external_id=external_id(connection, shape.remote_id),
        total=shape.total,
        checkout_url=shape.checkout_url,
        abandoned_at=shape.abandoned_at,
        recovered_at=shape.recovered_at,
        cause=connection.cause,
    )
    record_applied(record, local_id=cart.pk, updated_at=shape.updated_at)
    return {"cart_id": cart.pk, "cart_created": created, "customer_id": customer.pk}


@transaction.atomic
def draft_apply(connection: StoreConnection, shape: DraftShape) -> Outcome:
    """draft_orders/create → a draft order (once)."""
    record = record_locked(connection=connection, kind=RecordKind.DRAFT_ORDER, remote_id=shape.remote_id)
    customer = _customer_for(connection, shape.customer, shape.email)
    draft, created = customers.draft_order_create(
        customer=customer,
        currency=shape.currency,
        lines=_line_dicts(connection, shape.lines),
        total=shape.total,
        external_id=external_id(connection, shape.remote_id),
        total_shop=shape.total_shop,
        cause=connection.cause,
    )
    record_applied(record, local_id=draft.pk, updated_at=shape.updated_at)
    return {"draft_order_id": draft.pk, "draft_created": created, "customer_id": customer.pk}
