"""Shopify webhook bodies (REST representation, snake_case) read into the neutral shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from loyalty_site.lib.money import shop_currency

from . import reading as r
from .shapes import (
    CartShape,
    CustomerShape,
    DraftShape,
    LineShape,
    OrderEditShape,
    OrderShape,
    ProductShape,
    RefundShape,
    Unusable,
)

# Shopify's marketing consent states → ours (`consent_record` of the messaging model).
CONSENT = {
    "subscribed": "granted",
    "pending": "pending",
    "unsubscribed": "withdrawn",
    "not_subscribed": "none",
    "redacted": "withdrawn",
    "invalid": "withdrawn",
}


# Shopify's customer `state` → our account state: no account (a guest checkout) / invited / an account.
ACCOUNT_STATES = {"enabled": "registered", "invited": "invited", "disabled": "guest", "declined": "guest"}


def _presentment(body: dict[str, Any], key: str, fallback: str) -> Decimal | None:
    """An amount in the customer's currency: `<key>_set.presentment_money`, else the plain field."""
    amount = r.money(r.obj(r.obj(body.get(f"{key}_set")).get("presentment_money")).get("amount"))
    return amount if amount is not None else r.money(body.get(fallback))


def _shop_total(body: dict[str, Any]) -> Decimal | None:
    """`total_price_set.shop_money` when the Shopify shop's currency is our shop currency (else our rates)."""
    shop_money = r.obj(r.obj(body.get("total_price_set")).get("shop_money"))
    if r.currency(shop_money.get("currency_code")) != shop_currency():
        return None
    return r.money(shop_money.get("amount"))


def customer(body: dict[str, Any]) -> CustomerShape:
    remote = r.remote_id(body.get("id"))
    if not remote:
        raise Unusable("the customer has no id")
    address = r.obj(body.get("default_address")) or next(iter(r.items(body.get("addresses"))), {})
    consent: dict[str, str] = {}
    email_consent = r.obj(body.get("email_marketing_consent"))
    if email_consent.get("state") in CONSENT:
        consent["email"] = CONSENT[email_consent["state"]]
    elif isinstance(body.get("accepts_marketing"), bool):  # API versions before email_marketing_consent
        consent["email"] = "granted" if body["accepts_marketing"] else "none"
    sms_consent = r.obj(body.get("sms_marketing_consent"))
    if sms_consent.get("state") in CONSENT:
        consent["sms"] = CONSENT[sms_consent["state"]]
    consent_at = {
        channel: moment
        for channel, block in (("email", email_consent), ("sms", sms_consent))
        if channel in consent and (moment := r.moment(block.get("consent_updated_at"))) is not None
    }
    state = body.get("state")
    return CustomerShape(
        remote_id=remote,
        email=r.email(body.get("email")),
        phone=r.text(body.get("phone"), limit=32),
        first_name=r.text(body.get("first_name"), limit=100),
        last_name=r.text(body.get("last_name"), limit=100),
        country=r.country(address.get("country_code")),
        tags=r.tag_list(body.get("tags")) if "tags" in body else None,
        consent=consent,
        consent_at=consent_at,
        account_enabled=True if state == "enabled" else False if state in ("disabled", "invited", "declined") else None,
        account_state=ACCOUNT_STATES.get(state, "") if isinstance(state, str) else "",
        updated_at=r.moment(body.get("updated_at")),
    )


def _embedded_customer(body: dict[str, Any]) -> CustomerShape | None:
    embedded = r.obj(body.get("customer"))
    return customer(embedded) if r.remote_id(embedded.get("id")) else None


def _lines(body: dict[str, Any]) -> list[LineShape]:
    lines = []
    # After an order edit a removed line stays with `current_quantity` 0 (`quantity` is as first ordered). A refund
    # lowers `current_quantity` too, and refunds are applied as refunds: with refunds, the ordered quantities stay.
    edited_quantities = not r.items(body.get("refunds"))
    for item in r.items(body.get("line_items")):
        current = item.get("current_quantity") if edited_quantities else None
        quantity = r.integer(current if current is not None else item.get("quantity"))
        price = _presentment(item, "price", "price")
        if quantity < 1 or price is None or price < 0:
            continue
        lines.append(
            LineShape(
                title=r.text(item.get("title") or item.get("name")) or "Item",
                quantity=quantity,
                unit_price=price,
                remote_product_id=r.remote_id(item.get("product_id")),
                sku=r.text(item.get("sku"), limit=64),
            )
        )
    return lines


def refund(body: dict[str, Any], *, order_remote_id: str = "") -> RefundShape:
    """refunds/create (or one of an order's `refunds`): the amount is what the successful refund transactions
    returned, else the refunded lines' subtotals and taxes."""
    remote = r.remote_id(body.get("id"))
    order_remote = order_remote_id or r.remote_id(body.get("order_id"))
    if not remote or not order_remote:
        raise Unusable("the refund has no id or no order_id")
    transactions = [
        t for t in r.items(body.get("transactions")) if t.get("kind") == "refund" and t.get("status") == "success"
    ]
    amount = sum((r.money(t.get("amount")) or Decimal("0") for t in transactions), Decimal("0"))
    if not transactions:
        for line in r.items(body.get("refund_line_items")):
            amount += (_presentment(line, "subtotal", "subtotal") or Decimal("0")) + (
                _presentment(line, "total_tax", "total_tax") or Decimal("0")
            )
    return RefundShape(
        remote_id=remote,
        order_remote_id=order_remote,
        amount=amount,
        reason=r.text(body.get("note")),
        at=r.moment(body.get("processed_at")) or r.moment(body.get("created_at")),
    )


def order(body: dict[str, Any]) -> OrderShape:
    remote = r.remote_id(body.get("id"))
    currency = r.currency(body.get("presentment_currency")) or r.currency(body.get("currency"))
    total = _presentment(body, "total_price", "total_price")
    if not remote or not currency or total is None:
        raise Unusable("the order has no id, currency or total_price")
    shipping = r.obj(body.get("shipping_address"))
    return OrderShape(
        remote_id=remote,
        name=r.text(body.get("name"), limit=64),
        currency=currency,
        lines=_lines(body),
        total=total,
        customer=_embedded_customer(body),
        email=r.email(body.get("email") or body.get("contact_email")),
        discount_total=_presentment(body, "total_discounts", "total_discounts") or Decimal("0"),
        shipping_total=_presentment(body, "total_shipping_price", "total_shipping") or Decimal("0"),
        tax_total=_presentment(body, "total_tax", "total_tax") or Decimal("0"),
        total_shop=_shop_total(body) if currency != shop_currency() else None,
        channel="pos" if body.get("source_name") == "pos" else "online",
        location_id=r.remote_id(body.get("location_id")),
        shipping_country=r.country(shipping.get("country_code")),
        discount_codes=[
            r.text(code.get("code"), limit=64)
            for code in r.items(body.get("discount_codes"), limit=20)
            if code.get("code")
        ],
        placed_at=r.moment(body.get("processed_at")) or r.moment(body.get("created_at")),
        cancelled_at=r.moment(body.get("cancelled_at")),
        updated_at=r.moment(body.get("updated_at")),
        refunds=[refund(item, order_remote_id=remote) for item in r.items(body.get("refunds"), limit=100)],
    )


def checkout(body: dict[str, Any]) -> CartShape:
    remote = r.remote_id(body.get("token")) or r.remote_id(body.get("id"))
    currency = r.currency(body.get("presentment_currency")) or r.currency(body.get("currency"))
    total = r.money(body.get("total_price"))
    if not remote or not currency or total is None:
        raise Unusable("the checkout has no token, currency or total_price")
    completed_at = r.moment(body.get("completed_at"))
    return CartShape(
        remote_id=remote,
        currency=currency,
        lines=_lines(body),
        total=total,
        customer=_embedded_customer(body),
        email=r.email(body.get("email")),
        checkout_url=r.text(body.get("abandoned_checkout_url"), limit=200),
        # Shopify lists every checkout not completed under "Abandoned checkouts"; completed = recovered.
        abandoned_at=r.moment(body.get("created_at")) or r.moment(body.get("updated_at")),
        recovered_at=completed_at,
        updated_at=r.moment(body.get("updated_at")),
    )


def draft_order(body: dict[str, Any]) -> DraftShape:
    remote = r.remote_id(body.get("id"))
    currency = r.currency(body.get("presentment_currency")) or r.currency(body.get("currency"))
    total = _presentment(body, "total_price", "total_price")
    if not remote or not currency or total is None:
        raise Unusable("the draft order has no id, currency or total_price")
    return DraftShape(
        remote_id=remote,
        currency=currency,
        lines=_lines(body),
        total=total,
        customer=_embedded_customer(body),
        email=r.email(body.get("email")),
        total_shop=_shop_total(body) if currency != shop_currency() else None,
        updated_at=r.moment(body.get("updated_at")),
    )


def product(body: dict[str, Any]) -> ProductShape:
    remote = r.remote_id(body.get("id"))
    title = r.text(body.get("title"))
    if not remote or not title:
        raise Unusable("the product has no id or title")
    variant = next(iter(r.items(body.get("variants"))), {})
    return ProductShape(
        remote_id=remote,
        title=title,
        price=r.money(variant.get("price")) or Decimal("0"),
        sku=r.text(variant.get("sku"), limit=64),
        tags=r.tag_list(body.get("tags")),
        updated_at=r.moment(body.get("updated_at")),
    )


def order_edit(body: dict[str, Any]) -> OrderEditShape:
    """orders/edited: which order was edited and how many lines were added or removed (no new totals in it)."""
    edit = r.obj(body.get("order_edit"))
    order_remote = r.remote_id(edit.get("order_id"))
    if not order_remote:
        raise Unusable("the order edit has no order_id")
    lines = r.obj(edit.get("line_items"))
    return OrderEditShape(
        order_remote_id=order_remote,
        additions=len(r.items(lines.get("additions"))),
        removals=len(r.items(lines.get("removals"))),
        at=r.moment(edit.get("committed_at")) or r.moment(edit.get("created_at")),
    )
