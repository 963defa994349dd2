"""Write services of the data plane. Every write goes through here, under `transaction.atomic`."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Min, Sum
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from apps.platform.audit import audit_record
from loyalty_site.lib.errors import ConflictError, DomainError
from loyalty_site.lib.identity import email_domain
from loyalty_site.lib.money import no_rate_message
from loyalty_site.lib.timezones import UNKNOWN as UNKNOWN_TIME_ZONE
from loyalty_site.lib.timezones import time_zone_canonical

from . import signals
from .choices import CustomerState, CustomerStatus, OrderStatus
from .consent import services as consent
from .consent.choices import Channel
from .currency import conversion_for, record_day, refund_amount_shop
from .models import (
    Cart,
    Customer,
    CustomerEvent,
    CustomerStatusChange,
    DraftOrder,
    Order,
    OrderLine,
    Product,
    Refund,
    Store,
)
from .outbox import (
    customer_event_emit,
    customer_updated_emit,
    domain_event_emit,
    domain_events_emit_bulk,
)

CUSTOMER_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "language",
    "time_zone",
    "preferred_currency",
    "birthday",
    "accepts_marketing",
    "attributes",
)


_CONSENT_MIRROR = {"accepts_marketing", "unsubscribed_at"}
_PROFILE_COLUMNS = [
    field.name
    for field in Customer._meta.concrete_fields
    if not field.primary_key and field.name not in _CONSENT_MIRROR and field.name != "created_at"
]


def _normalise_customer_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown customer field."))
    clean = dict(fields)
    if clean.get("country"):
        clean["country"] = clean["country"].upper()
    if clean.get("preferred_currency"):
        clean["preferred_currency"] = clean["preferred_currency"].upper()
    if clean.get("language"):
        clean["language"] = clean["language"].strip().replace("_", "-").lower()
    if clean.get("time_zone"):
        # Stored as the tz database spells it ("europe/paris" is Europe/Paris); unknown names are refused.
        name = time_zone_canonical(clean["time_zone"])
        if name is None:
            raise ValidationError({"time_zone": UNKNOWN_TIME_ZONE.format(value=str(clean["time_zone"])[:64])})
        clean["time_zone"] = name
    if clean.get("email"):
        clean["email"] = clean["email"].strip().lower()
    if "email" in clean:
        clean["email_domain"] = email_domain(clean["email"] or "")
    return clean


def _state_clean(state: str | None) -> str:
    if state in (None, ""):
        return CustomerState.REGISTERED
    if state not in CustomerState.values:
        raise ValidationError({"state": f"Unknown account state {state!r}; one of {', '.join(CustomerState.values)}."})
    return str(state)


def _preferred_currency_claim(customer: Customer, fields: dict[str, Any]) -> None:
    """A preferred currency given by the integrator wins over the derived one; an empty one hands it back."""
    if "preferred_currency" in fields:
        customer.preferred_currency_set_by_integrator = bool(fields["preferred_currency"])


@transaction.atomic
def customer_create(
    *,
    external_id: str | None = None,
    state: str | None = None,
    cause: str = "",
    signup_ip: str | None = None,
    signup_device: str = "",
    consent_source: str = "",
    **fields: Any,
) -> Customer:
    """
    Record a customer with an account state (default registered) and where the sign-up came from (velocity
    checks). Only a registered account sends `customer_registered`: a guest checkout, an invited or a
    disabled account does not.
    """
    clean = _normalise_customer_fields(fields)
    wants_marketing = clean.pop("accepts_marketing", None)
    if wants_marketing is None and settings.CONSENT_DOUBLE_OPT_IN:
        wants_marketing = False  # with double opt-in nobody is subscribed without asking
    if wants_marketing is not None:
        # The consent service sets the mirror column: granted, or pending until the link is clicked.
        clean["accepts_marketing"] = False
    customer = Customer(
        external_id=external_id or None,
        state=_state_clean(state),
        signup_ip=signup_ip or None,
        signup_device=(signup_device or "")[:64],
        **clean,
    )
    _preferred_currency_claim(customer, clean)
    customer.full_clean(validate_unique=False, validate_constraints=False)
    customer.save()
    if wants_marketing:
        consent.consent_grant(
            customer=customer,
            channel=Channel.EMAIL,
            source=consent_source or consent.source_from_cause(cause),
            cause=cause,
        )
    if customer.state == CustomerState.REGISTERED:
        customer_event_emit(signal=signals.customer_registered, customer=customer, cause=cause)
    else:  # a guest, invited or disabled customer: no registration, but state tags may read the new row
        customer_updated_emit(customer=customer, cause=cause, fields=["state", *clean])
    return customer


@transaction.atomic
def customer_update(
    *, customer: Customer, state: str | None = None, cause: str = "", consent_source: str = "", **fields: Any
) -> Customer:
    """
    Change a customer's profile fields (consent has its own service); a given account `state` goes through
    `customer_state_set` (which sends `customer.registered` / `customer.activated` as it says).
    """
    clean = _normalise_customer_fields(fields)
    wants_marketing = clean.pop("accepts_marketing", None)
    changed = [name for name, value in clean.items() if getattr(customer, name) != value]
    for name, value in clean.items():
        setattr(customer, name, value)
    _preferred_currency_claim(customer, clean)
    if "preferred_currency" in clean and not clean["preferred_currency"]:
        customer.preferred_currency = preferred_currency_derive(customer_id=customer.pk) if customer.pk else ""
    customer.full_clean(validate_unique=False, validate_constraints=False)
    # The consent mirror columns are only written by the consent service: a stale instance never resets them.
    customer.save(update_fields=_PROFILE_COLUMNS)
    if changed:
        customer_updated_emit(customer=customer, cause=cause, fields=changed)
    if wants_marketing is not None:
        _marketing_flag_set(customer, bool(wants_marketing), cause, consent_source)
    if state not in (None, ""):
        customer_state_set(customer=customer, state=str(state), cause=cause)
    return customer


def _marketing_flag_set(customer: Customer, wanted: bool, cause: str, source: str = "") -> None:
    """The legacy `accepts_marketing` flag is the e-mail marketing consent (the consent service's yes/no rule)."""
    consent.consent_flag_set(
        customer=customer,
        channel=Channel.EMAIL,
        wanted=wanted,
        source=source or consent.source_from_cause(cause),
        cause=cause,
    )


@transaction.atomic
def customer_state_set(*, customer: Customer, state: str, cause: str = "") -> Customer:
    """
    Move a customer's account state (API, CSV import, store connectors). The triggers follow what happened:

    - guest → registered: the guest registered — `customer.registered` and `customer.activated`;
    - invited → registered: the invited customer activated their account — `customer.activated`;
    - registered, invited or disabled as such, or back from disabled: no trigger.
    Setting the state it already has changes nothing.
    """
    new = _state_clean(state)
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    old = locked.state
    if old == new:
        customer.state = new
        return customer
    locked.state = new
    locked.save(update_fields=["state", "updated_at"])
    customer.state = new
    customer_updated_emit(customer=customer, cause=cause, fields=["state"])
    if new == CustomerState.REGISTERED and old == CustomerState.GUEST:
        customer_event_emit(signal=signals.customer_registered, customer=customer, cause=cause)
    if new == CustomerState.REGISTERED and old in (CustomerState.GUEST, CustomerState.INVITED):
        customer_event_emit(
            signal=signals.customer_activated, customer=customer, cause=cause, payload={"previous_state": old}
        )
    return customer


def _customer_locked(*, external_id: str) -> Customer | None:
    return Customer.objects.select_for_update().filter(external_id=external_id).first()


@transaction.atomic
def customer_upsert(
    *,
    external_id: str,
    cause: str = "",
    consent_source: str = "",
    signup: dict[str, Any] | None = None,
    **fields: Any,
) -> tuple[Customer, bool]:
    """
    Find the customer by integrator id and update it, or register it. Returns (customer, created).
    `signup` (`signup_ip`, `signup_device`) is recorded only when the customer is registered here.

    Race-free: when concurrent requests register the same new external id, the unique constraint lets
    one insert commit; the others' inserts fail inside a savepoint and they update the row it stored.
    """
    customer = _customer_locked(external_id=external_id)
    if customer is None:
        try:
            with transaction.atomic():
                return (
                    customer_create(
                        external_id=external_id, cause=cause, consent_source=consent_source, **(signup or {}), **fields
                    ),
                    True,
                )
        except IntegrityError:
            customer = _customer_locked(external_id=external_id)
            if customer is None:
                raise
    if fields:
        customer_update(customer=customer, cause=cause, consent_source=consent_source, **fields)
    return customer, False


@transaction.atomic
def customer_delete(*, customer: Customer) -> None:
    """Delete a customer who has no orders (orders are history and keep their customer)."""
    if Order.objects.filter(customer=customer).exists():
        raise ConflictError("A customer with orders cannot be deleted.", path="id", code="customer_has_orders")
    customer.delete()


def customer_resolve(
    *,
    customer_id: int | None = None,
    customer_external_id: str | None = None,
    customer_fields: dict[str, Any] | None = None,
    known: Customer | None = None,
    cause: str = "",
) -> Customer:
    """
    The customer an ingested record belongs to: by primary key, by integrator id, or an embedded
    customer object (with `external_id`) that is upserted. Exactly one of the three must be given.
    `known`: the row the caller's validation already read for that primary key or integrator id (no
    second SELECT). Only the upsert writes (in its own atomic block); the rest is a read, no savepoint.
    """
    given = [
        name
        for name, value in (
            ("customer_id", customer_id),
            ("customer_external_id", customer_external_id),
            ("customer", customer_fields),
        )
        if value not in (None, "")
    ]
    if len(given) != 1:
        raise ValidationError({"customer": "Give exactly one of customer, customer_external_id, customer_id."})
    if customer_fields:
        fields = dict(customer_fields)
        external_id = fields.pop("external_id", None)
        if not external_id:
            raise ValidationError({"customer.external_id": "An embedded customer needs an external_id."})
        customer, _ = customer_upsert(external_id=external_id, cause=cause, **fields)
        return customer
    if known is not None and (
        known.pk == customer_id or (customer_external_id and known.external_id == customer_external_id)
    ):
        return known
    if customer_id is not None:
        by_id = Customer.objects.filter(pk=customer_id).first()
        if by_id is None:
            raise ValidationError({"customer_id": f"No customer with id {customer_id}."})
        return by_id
    by_external_id = Customer.objects.filter(external_id=customer_external_id).first()
    if by_external_id is None:
        raise ValidationError({"customer_external_id": f"No customer with external id {customer_external_id!r}."})
    return by_external_id


@transaction.atomic
def customer_activate(*, customer: Customer, cause: str = "") -> Customer:
    """
    A guest or invited customer activates an account: they become registered (`customer_state_set` sends
    `customer.activated`, and `customer.registered` for a guest). Already registered: nothing happens.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.state == CustomerState.DISABLED:
        raise ValidationError({"state": "A disabled customer cannot be activated."})
    return customer_state_set(customer=customer, state=CustomerState.REGISTERED, cause=cause)


def preferred_currency_derive(*, customer_id: int) -> str:
    """
    The currency a customer pays in most: the most orders by count (cancelled and fully refunded orders do
    not count), ties broken by the currency of the most recent order; "" without such orders. One grouped
    query on the (customer, placed_at) index.
    """
    best = (
        Order.objects.filter(customer_id=customer_id)
        .exclude(status__in=(OrderStatus.CANCELLED, OrderStatus.REFUNDED))
        .order_by()
        .values("currency")
        .annotate(count=Count("pk"), last_at=Max("placed_at"), last_id=Max("pk"))
        .order_by("-count", "-last_at", "-last_id")
        .values_list("currency", flat=True)
        .first()
    )
    return best or ""


def _preferred_currency_refresh(customer_id: int) -> None:
    """Keep a derived preferred currency current after an order write (the integrator's choice is kept)."""
    currency = preferred_currency_derive(customer_id=customer_id)
    Customer.objects.filter(pk=customer_id, preferred_currency_set_by_integrator=False).exclude(
        preferred_currency=currency
    ).update(preferred_currency=currency)


@transaction.atomic
def customer_unsubscribe(*, customer: Customer, at: datetime | None = None, cause: str = "") -> Customer:
    """Withdraw e-mail marketing consent (the consent service); sends `customer_unsubscribed` once."""
    consent.consent_withdraw(customer=customer, source=consent.source_from_cause(cause), cause=cause, at=at)
    return customer


@transaction.atomic
def customer_status_set(
    *,
    customer: Customer,
    status: str,
    reason: str,
    user: Any = None,
    cause: str = "",
    at: datetime | None = None,
) -> Customer:
    """
    Set a customer's fraud status (active / flagged / blocked) with a reason; records the change in the
    customer's status history and the audit log. Setting the current status again changes nothing.
    """
    if status not in CustomerStatus.values:
        raise DomainError(f"Unknown status {status!r}.", path="status", code="invalid_status")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("A reason is required.", path="reason", code="reason_required")
    at = at or timezone.now()
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.status == status:
        return customer
    old = customer.status
    customer.status = status
    customer.status_reason = reason[:255]
    customer.status_changed_at = at
    customer.save(update_fields=["status", "status_reason", "status_changed_at", "updated_at"])
    actor = user if getattr(user, "is_authenticated", False) else None
    CustomerStatusChange.objects.create(
        customer=customer,
        old_status=old,
        new_status=status,
        reason=reason[:255],
        actor=actor,
        cause=cause[:64],
        created_at=at,
    )
    audit_record(
        action="status_changed",
        obj=customer,
        changes={"status": {"old": old, "new": status}, "status_reason": {"old": "", "new": reason[:255]}},
        user=user,
    )
    return customer


@transaction.atomic
def product_upsert(*, external_id: str | None, title: str, price: Decimal = Decimal("0"), sku: str = "") -> Product:
    """Create a product or update the one with this integrator id."""
    if external_id:
        product, _ = Product.objects.update_or_create(
            external_id=external_id, defaults={"title": title, "price": price, "sku": sku}
        )
        return product
    return Product.objects.create(title=title, price=price, sku=sku)


PRODUCT_FIELDS = ("external_id", "title", "price", "sku")


@transaction.atomic
def product_update(*, product: Product, **fields: Any) -> Product:
    """Change a product's fields (title, price, sku, external_id); unknown fields are refused."""
    unknown = set(fields) - set(PRODUCT_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown product field."))
    if fields.get("external_id") and (
        Product.objects.filter(external_id=fields["external_id"]).exclude(pk=product.pk).exists()
    ):
        raise ValidationError({"external_id": "Another product has this external_id."})
    for name, value in fields.items():
        setattr(product, name, value or None if name == "external_id" else value)
    product.save()
    return product


@transaction.atomic
def store_upsert(
    *,
    code: str,
    name: str,
    latitude: float,
    longitude: float,
    radius_m: int = 200,
    address: str = "",
    is_active: bool = True,
) -> tuple[Store, bool]:
    """Create the store with this code or update it. Returns (store, created)."""
    store = Store.objects.select_for_update().filter(code=code).first()
    created = store is None
    store = store or Store(code=code)
    for field, value in (
        ("name", name),
        ("latitude", latitude),
        ("longitude", longitude),
        ("radius_m", radius_m),
        ("address", address),
        ("is_active", is_active),
    ):
        setattr(store, field, value)
    store.full_clean(validate_unique=False)
    store.save()
    return store, created


@dataclass(frozen=True)
class LineInput:
    """One order line as given by the caller."""

    title: str
    quantity: int
    unit_price: Decimal
    product: Product | None = None


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@transaction.atomic
def order_create(
    *,
    customer: Customer,
    currency: str,
    lines: Iterable[LineInput],
    external_id: str | None = None,
    channel: str = "online",
    shipping_country: str = "",
    discount_total: Decimal | int | str = 0,
    shipping_total: Decimal | int | str = 0,
    tax_total: Decimal | int | str = 0,
    total: Decimal | int | str | None = None,
    placed_at: datetime | None = None,
    store: Store | None = None,
    exchange_rate: Decimal | str | None = None,
    total_shop: Decimal | str | None = None,
    checkout_session: str = "",
    discount_codes: Iterable[str] = (),
    cause: str = "",
) -> tuple[Order, bool]:
    """
    Record an order, update the customer's summary figures, and send `order_created` plus one
    `product_purchased` per distinct product. Re-sending an existing `external_id` returns the stored
    order unchanged: (order, False).

    The amounts are also stored in the shop currency (see `currency.conversion_for`: the given
    `total_shop` / `exchange_rate`, else the table's rate of the order's day); no rate → ValidationError
    on `currency`. The customer's figures move by the shop-currency amounts. `checkout_session` and
    `discount_codes` (as the shop used them with the promotions API) let promotions link their redemption
    to this order (the `order.created` outbox event carries them).
    """
    if external_id:
        existing = Order.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
    lines = list(lines)
    if not lines:
        raise ValidationError({"lines": "An order needs at least one line."})
    subtotal = sum((_money(line.unit_price) * line.quantity for line in lines), Decimal("0.00"))
    discount, shipping, tax = _money(discount_total), _money(shipping_total), _money(tax_total)
    order_total = _money(total) if total is not None else subtotal - discount + shipping + tax
    if order_total < 0:
        raise ValidationError({"total": "The order total cannot be negative."})
    placed_at = placed_at or timezone.now()
    conversion = conversion_for(
        currency=currency, at=placed_at, total=order_total, exchange_rate=exchange_rate, total_shop=total_shop
    )
    order_total_shop = conversion.total_shop if conversion.total_shop is not None else conversion.shop(order_total)
    order = Order.objects.create(
        external_id=external_id or None,
        customer=customer,
        currency=conversion.currency,
        subtotal=subtotal,
        discount_total=discount,
        shipping_total=shipping,
        tax_total=tax,
        total=order_total,
        shop_currency=conversion.shop_currency,
        exchange_rate=conversion.rate,
        subtotal_shop=conversion.shop(subtotal),
        discount_total_shop=conversion.shop(discount),
        shipping_total_shop=conversion.shop(shipping),
        tax_total_shop=conversion.shop(tax),
        total_shop=order_total_shop,
        refunded_total_shop=Decimal("0.00"),
        channel=channel,
        shipping_country=(shipping_country or "").upper(),
        status=OrderStatus.PAID,
        store=store,
        placed_at=placed_at,
        checkout_session=checkout_session[:120],
        discount_codes=[str(code)[:64] for code in discount_codes][:20],
    )
    order_lines = _order_lines_create(order, lines)
    Customer.objects.filter(pk=customer.pk).update(
        orders_count=F("orders_count") + 1,
        total_spent=F("total_spent") + order_total_shop,
        first_order_at=Least(Coalesce(F("first_order_at"), placed_at), placed_at),
        last_order_at=Greatest(Coalesce(F("last_order_at"), placed_at), placed_at),
        updated_at=timezone.now(),
    )
    _preferred_currency_refresh(customer.pk)
    customer.refresh_from_db(
        fields=["orders_count", "total_spent", "first_order_at", "last_order_at", "preferred_currency"]
    )
    domain_event_emit(
        signal=signals.order_created,
        name="order.created",
        customer=customer,
        payload={"order_id": order.pk},
        cause=cause,
        sender=Order,
        order=order,
    )
    seen_products: set[int] = set()
    for line in order_lines:
        if line.product_id is None or line.product_id in seen_products:
            continue
        seen_products.add(line.product_id)
        domain_event_emit(
            signal=signals.product_purchased,
            name="product.purchased",
            customer=customer,
            payload={"order_id": order.pk, "line_id": line.pk, "product_id": line.product_id},
            cause=cause,
            sender=Order,
            order=order,
            line=line,
            product=line.product,
        )
    return order, True


def _customer_recompute_order_times(customer_id: int) -> None:
    times = Order.objects.filter(customer_id=customer_id).exclude(status=OrderStatus.CANCELLED)
    bounds = times.aggregate(first=Min("placed_at"), last=Max("placed_at"))
    Customer.objects.filter(pk=customer_id).update(first_order_at=bounds["first"], last_order_at=bounds["last"])


@transaction.atomic
def order_cancel(*, order: Order, at: datetime | None = None, cause: str = "") -> Order:
    """Cancel an order: it no longer counts in the customer's figures. Sends `order_cancelled` once."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.status == OrderStatus.CANCELLED:
        return order
    order.status = OrderStatus.CANCELLED
    order.cancelled_at = at or timezone.now()
    order.save(update_fields=["status", "cancelled_at", "updated_at"])
    Customer.objects.filter(pk=order.customer_id).update(
        orders_count=F("orders_count") - 1,
        total_spent=F("total_spent") - (order.net_total_shop or Decimal("0")),
        updated_at=timezone.now(),
    )
    _customer_recompute_order_times(order.customer_id)
    _preferred_currency_refresh(order.customer_id)
    domain_event_emit(
        signal=signals.order_cancelled,
        name="order.cancelled",
        customer=order.customer,
        payload={"order_id": order.pk},
        cause=cause,
        sender=Order,
        order=order,
    )
    return order


def _order_lines_create(order: Order, lines: Iterable[LineInput]) -> list[OrderLine]:
    """The order's lines, in one INSERT (amounts in the order's currency, rounded like the totals)."""
    return OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            product=line.product,
            title=line.title,
            quantity=line.quantity,
            unit_price=_money(line.unit_price),
            total=_money(line.unit_price) * line.quantity,
        )
        for line in lines
    )


def _lines_signature(lines: Iterable[LineInput]) -> list[tuple[int | None, str, int, Decimal]]:
    return [
        (line.product.pk if line.product else None, line.title, int(line.quantity), _money(line.unit_price))
        for line in lines
    ]


def _order_lines_signature(lines: Iterable[OrderLine]) -> list[tuple[int | None, str, int, Decimal]]:
    return [(line.product_id, line.title, line.quantity, _money(line.unit_price)) for line in lines]


@transaction.atomic
def order_amend(
    *,
    order: Order,
    lines: Iterable[LineInput],
    discount_total: Decimal | int | str = 0,
    shipping_total: Decimal | int | str = 0,
    tax_total: Decimal | int | str = 0,
    total: Decimal | int | str | None = None,
    total_shop: Decimal | str | None = None,
    cause: str = "",
) -> tuple[Order, bool]:
    """
    An order edited after it was placed (the shop changed its lines or amounts): the order takes the new lines and
    amounts (converted at the rate stored on the order, or by the given `total_shop`), the customer's figures move
    by the difference of the shop-currency total, and `order.updated` is announced (loyalty adjusts the order's
    points, state tags re-evaluate the customer). The same lines and amounts again change nothing: (order, False).
    A cancelled order is not amended; the new total cannot fall below what was already refunded.
    """
    order = Order.objects.select_for_update().get(pk=order.pk)
    lines = list(lines)
    if order.status == OrderStatus.CANCELLED:
        return order, False
    if not lines:
        raise ValidationError({"lines": "An order needs at least one line."})
    subtotal = sum((_money(line.unit_price) * line.quantity for line in lines), Decimal("0.00"))
    discount, shipping, tax = _money(discount_total), _money(shipping_total), _money(tax_total)
    new_total = _money(total) if total is not None else subtotal - discount + shipping + tax
    current_lines = list(order.lines.order_by("pk"))
    unchanged = (
        (subtotal, discount, shipping, tax, new_total)
        == (order.subtotal, order.discount_total, order.shipping_total, order.tax_total, order.total)
        and _lines_signature(lines) == _order_lines_signature(current_lines)
        and (total_shop is None or order.total_shop == Decimal(str(total_shop)).quantize(Decimal("0.01")))
    )
    if unchanged:
        return order, False
    if new_total < 0:
        raise ValidationError({"total": "The order total cannot be negative."})
    if new_total < order.refunded_total:
        raise ValidationError({"total": f"The total cannot fall below what was refunded ({order.refunded_total})."})
    conversion = conversion_for(
        currency=order.currency,
        at=order.placed_at,
        total=new_total,
        exchange_rate=None if total_shop is not None else order.exchange_rate,
        total_shop=total_shop,
    )
    new_total_shop = conversion.total_shop if conversion.total_shop is not None else conversion.shop(new_total)
    before = {"total": str(order.total), "total_shop": str(order.total_shop), "lines": len(current_lines)}
    old_net = order.net_total_shop or Decimal("0")
    order.subtotal, order.discount_total, order.shipping_total, order.tax_total = subtotal, discount, shipping, tax
    order.total, order.total_shop, order.exchange_rate = new_total, new_total_shop, conversion.rate
    order.subtotal_shop = conversion.shop(subtotal)
    order.discount_total_shop = conversion.shop(discount)
    order.shipping_total_shop = conversion.shop(shipping)
    order.tax_total_shop = conversion.shop(tax)
    if order.refunded_total:
        order.status = OrderStatus.REFUNDED if order.refunded_total == new_total else OrderStatus.PARTIALLY_REFUNDED
    order.edited_at = timezone.now()
    order.save()
    if _lines_signature(lines) != _order_lines_signature(current_lines):
        order.lines.all().delete()
        _order_lines_create(order, lines)
    delta = (order.net_total_shop or Decimal("0")) - old_net
    if delta:
        Customer.objects.filter(pk=order.customer_id).update(
            total_spent=F("total_spent") + delta, updated_at=timezone.now()
        )
    domain_event_emit(
        signal=signals.order_updated,
        name="order.updated",
        customer=order.customer,
        payload={
            "order_id": order.pk,
            "before": before,
            "after": {"total": str(order.total), "total_shop": str(order.total_shop), "lines": len(lines)},
        },
        cause=cause,
        sender=Order,
        order=order,
    )
    return order, True


@transaction.atomic
def refund_create(
    *,
    order: Order,
    amount: Decimal | int | str,
    reason: str = "",
    external_id: str | None = None,
    at: datetime | None = None,
    cause: str = "",
) -> tuple[Refund, bool]:
    """
    Refund part or all of an order. The refund lowers the customer's net total spent. Sends
    `order_refunded`. Re-sending an existing refund `external_id` returns it: (refund, False).
    """
    if external_id:
        existing = Refund.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
    amount = _money(amount)
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.total_shop is None:  # a legacy order whose currency had no rate: try the table now
        from .currency import shop_amounts_fill

        if not shop_amounts_fill(order=order):
            raise ValidationError(
                {"currency": f"order {order}: " + no_rate_message(order.currency, record_day(order.placed_at))}
            )
        order = Order.objects.select_for_update().get(pk=order.pk)
    if amount <= 0:
        raise ValidationError({"amount": "The refund amount must be positive."})
    if order.status == OrderStatus.CANCELLED:
        raise ValidationError({"order": "A cancelled order cannot be refunded."})
    if amount > order.refundable_amount:
        raise ValidationError({"amount": f"At most {order.refundable_amount} can still be refunded."})
    amount_shop = refund_amount_shop(
        order,
        amount,
        refunded_before=order.refunded_total,
        refunded_shop_before=order.refunded_total_shop or Decimal(0),
    )
    refund = Refund.objects.create(
        order=order,
        amount=amount,
        amount_shop=amount_shop,
        reason=reason,
        external_id=external_id or None,
        created_at=at or timezone.now(),
    )
    order.refunded_total += amount
    order.refunded_total_shop = (order.refunded_total_shop or Decimal("0")) + amount_shop
    order.status = OrderStatus.REFUNDED if order.refunded_total == order.total else OrderStatus.PARTIALLY_REFUNDED
    order.save(update_fields=["refunded_total", "refunded_total_shop", "status", "updated_at"])
    Customer.objects.filter(pk=order.customer_id).update(
        refunded_total=F("refunded_total") + amount_shop,
        total_spent=F("total_spent") - amount_shop,
        updated_at=timezone.now(),
    )
    if order.status == OrderStatus.REFUNDED:
        _preferred_currency_refresh(order.customer_id)
    domain_event_emit(
        signal=signals.order_refunded,
        name="order.refunded",
        customer=order.customer,
        payload={"order_id": order.pk, "refund_id": refund.pk, "amount": str(amount)},
        cause=cause,
        sender=Order,
        order=order,
        refund=refund,
    )
    return refund, True


@transaction.atomic
def draft_order_create(
    *,
    customer: Customer,
    currency: str,
    lines: list[dict[str, Any]],
    total: Decimal | int | str | None = None,
    external_id: str | None = None,
    exchange_rate: Decimal | str | None = None,
    total_shop: Decimal | str | None = None,
    cause: str = "",
) -> tuple[DraftOrder, bool]:
    """
    Record a draft order (with its total in the shop currency, as orders); sends `draft_order_created`.
    Existing `external_id` → (draft, False).
    """
    if external_id:
        existing = DraftOrder.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
    computed = sum((_money(line["unit_price"]) * int(line["quantity"]) for line in lines), Decimal("0.00"))
    draft_total = _money(total) if total is not None else computed
    conversion = conversion_for(
        currency=currency, at=timezone.now(), total=draft_total, exchange_rate=exchange_rate, total_shop=total_shop
    )
    draft = DraftOrder.objects.create(
        customer=customer,
        currency=conversion.currency,
        lines=lines,
        total=draft_total,
        shop_currency=conversion.shop_currency,
        exchange_rate=conversion.rate,
        total_shop=conversion.total_shop if conversion.total_shop is not None else conversion.shop(draft_total),
        external_id=external_id or None,
    )
    domain_event_emit(
        signal=signals.draft_order_created,
        name="draft_order.created",
        customer=customer,
        payload={"draft_order_id": draft.pk},
        cause=cause,
        sender=DraftOrder,
        draft_order=draft,
    )
    return draft, True


@transaction.atomic
def cart_upsert(
    *,
    customer: Customer,
    currency: str,
    lines: list[dict[str, Any]],
    external_id: str | None = None,
    total: Decimal | int | str | None = None,
    checkout_url: str = "",
    abandoned_at: datetime | None = None,
    recovered_at: datetime | None = None,
    exchange_rate: Decimal | str | None = None,
    total_shop: Decimal | str | None = None,
    cause: str = "",
) -> tuple[Cart, bool]:
    """
    Create or update a checkout. Sends `cart_abandoned` whenever an abandoned, unrecovered cart is
    written with new content (the "abandoned cart updated" trigger). Returns (cart, created).
    """
    computed = sum((_money(line["unit_price"]) * int(line["quantity"]) for line in lines), Decimal("0.00"))
    cart_total = _money(total) if total is not None else computed
    conversion = conversion_for(
        currency=currency, at=timezone.now(), total=cart_total, exchange_rate=exchange_rate, total_shop=total_shop
    )
    values = {
        "customer": customer,
        "currency": conversion.currency,
        "lines": lines,
        "total": cart_total,
        "shop_currency": conversion.shop_currency,
        "exchange_rate": conversion.rate,
        "total_shop": conversion.total_shop if conversion.total_shop is not None else conversion.shop(cart_total),
        "checkout_url": checkout_url,
        "abandoned_at": abandoned_at,
        "recovered_at": recovered_at,
    }
    existing = Cart.objects.select_for_update().filter(external_id=external_id).first() if external_id else None
    created = existing is None
    before = None if existing is None else (existing.lines, existing.abandoned_at, existing.recovered_at)
    if existing is None:
        cart = Cart.objects.create(external_id=external_id or None, **values)
    else:
        cart = existing
        for name, value in values.items():
            setattr(cart, name, value)
        cart.save()
    after = (cart.lines, cart.abandoned_at, cart.recovered_at)
    if cart.abandoned_at and not cart.recovered_at and before != after:
        domain_event_emit(
            signal=signals.cart_abandoned,
            name="cart.abandoned",
            customer=customer,
            payload={"cart_id": cart.pk},
            cause=cause,
            sender=Cart,
            cart=cart,
        )
    return cart, created


@transaction.atomic(savepoint=False)  # nothing here to roll back alone: a failure fails the caller's write
def custom_event_record(
    *,
    customer: Customer,
    name: str,
    properties: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    external_id: str | None = None,
    cause: str = "",
) -> tuple[CustomerEvent, bool]:
    """Record a custom event (newsletter signup, review posted...); sends `custom_event_received`."""
    if external_id:
        existing = CustomerEvent.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
    custom_event = CustomerEvent.objects.create(
        customer=customer,
        name=name.strip(),
        properties=properties or {},
        occurred_at=occurred_at or timezone.now(),
        external_id=external_id or None,
    )
    domain_event_emit(
        signal=signals.custom_event_received,
        name="event.custom",
        customer=customer,
        payload={"custom_event_id": custom_event.pk, "event_name": custom_event.name},
        cause=cause,
        sender=CustomerEvent,
        custom_event=custom_event,
    )
    return custom_event, True


@dataclass(frozen=True)
class CustomEventInput:
    """One custom event of a batch (`custom_events_record_bulk`); the customer is already resolved."""

    customer: Customer
    name: str
    properties: dict[str, Any] | None = None
    occurred_at: datetime | None = None
    external_id: str | None = None


def custom_events_record_bulk(
    *, events: Sequence[CustomEventInput], cause: str = ""
) -> list[tuple[CustomerEvent, bool]]:
    """
    `custom_event_record` for many events, set-based and in ONE transaction: the stored external ids read in
    one query, then one insert for the events and one for their outbox rows (`domain_events_emit_bulk`).
    Returns (event, created) per input, in order — exactly what calling `custom_event_record` for each would
    return: an external id already stored, or given twice in the batch, answers the first row, not created.
    A concurrent writer storing one of the new external ids first makes the insert fail; the whole write is
    then done once more, answering that writer's row.
    """
    try:
        return _custom_events_write(events, cause)
    except IntegrityError:
        return _custom_events_write(events, cause)


@transaction.atomic
def _custom_events_write(events: Sequence[CustomEventInput], cause: str) -> list[tuple[CustomerEvent, bool]]:
    external_ids = {event.external_id for event in events if event.external_id}
    known: dict[str, CustomerEvent] = (
        {row.external_id: row for row in CustomerEvent.objects.filter(external_id__in=external_ids) if row.external_id}
        if external_ids
        else {}
    )
    now = timezone.now()
    rows: list[CustomerEvent] = []
    answers: list[tuple[str | None, CustomerEvent | None]] = []  # (an external id to look up, or the new row)
    for event in events:
        if event.external_id and event.external_id in known:
            answers.append((event.external_id, None))
            continue
        row = CustomerEvent(
            customer=event.customer,
            name=event.name.strip(),
            properties=event.properties or {},
            occurred_at=event.occurred_at or now,
            external_id=event.external_id or None,
        )
        if row.external_id:
            known[row.external_id] = row
        rows.append(row)
        answers.append((None, row))
    CustomerEvent.objects.bulk_create(rows)
    domain_events_emit_bulk(
        signal=signals.custom_event_received,
        name="event.custom",
        entries=[
            (row.customer, {"custom_event_id": row.pk, "event_name": row.name}, {"custom_event": row}) for row in rows
        ],
        cause=cause,
        sender=CustomerEvent,
    )
    return [(row, True) if row is not None else (known[str(external_id)], False) for external_id, row in answers]


EARTH_RADIUS_M = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class StoreMatch:
    store: Store
    distance_m: float


@transaction.atomic
def location_report(*, customer: Customer, latitude: float, longitude: float, cause: str = "") -> list[StoreMatch]:
    """
    Handle a geolocation ping: find the active stores whose radius contains the point and send
    `customer_location_reported` for each. Returns the matches, nearest first.
    """
    if not (-90 <= latitude <= 90) or not (-180 <= longitude <= 180):
        raise ValidationError({"latitude": "Coordinates are out of range."})
    # A bounding box on indexed columns narrows the candidates before the exact distance check
    # (5 km is larger than any store radius we accept).
    lat_delta = 0.05
    lon_delta = 0.05 / max(math.cos(math.radians(latitude)), 0.01)
    candidates = Store.objects.filter(
        is_active=True,
        latitude__range=(latitude - lat_delta, latitude + lat_delta),
        longitude__range=(longitude - lon_delta, longitude + lon_delta),
    )
    matches = sorted(
        (
            StoreMatch(store, d)
            for store in candidates
            if (d := distance_m(latitude, longitude, store.latitude, store.longitude)) <= store.radius_m
        ),
        key=lambda match: match.distance_m,
    )
    for match in matches:
        domain_event_emit(
            signal=signals.customer_location_reported,
            name="customer.near_store",
            customer=customer,
            payload={
                "store_id": match.store.pk,
                "latitude": latitude,
                "longitude": longitude,
                "distance_m": round(match.distance_m, 1),
            },
            cause=cause,
            sender=Store,
            store=match.store,
            latitude=latitude,
            longitude=longitude,
            distance_m=match.distance_m,
        )
    return matches


def customer_summary_recompute(*, customer: Customer) -> Customer:
    """
    Rebuild a customer's summary figures from their orders (repair tool; the services keep them current).
    Money figures sum the shop-currency amounts; orders whose amounts are not converted yet (no rate)
    count in `orders_count` but add no money (`money_rates --missing` lists them).
    """
    orders = Order.objects.filter(customer=customer).exclude(status=OrderStatus.CANCELLED)
    figures = orders.aggregate(
        count=Count("pk"),
        gross=Coalesce(Sum("total_shop"), Decimal("0")),
        refunded=Coalesce(Sum("refunded_total_shop"), Decimal("0")),
        first=Min("placed_at"),
        last=Max("placed_at"),
    )
    all_refunds = Order.objects.filter(customer=customer).aggregate(
        total=Coalesce(Sum("refunded_total_shop"), Decimal("0"))
    )
    Customer.objects.filter(pk=customer.pk).update(
        orders_count=figures["count"],
        total_spent=figures["gross"] - figures["refunded"],
        refunded_total=all_refunds["total"],
        first_order_at=figures["first"],
        last_order_at=figures["last"],
    )
    customer.refresh_from_db()
    return customer
