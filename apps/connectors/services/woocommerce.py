"""WooCommerce webhook bodies (the REST API v3 resources) read into the neutral shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import reading as r
from .shapes import CustomerShape, LineShape, OrderShape, RefundShape, Unusable

# Orders that count: paid or being fulfilled. "pending" (awaiting payment), "failed" and block-checkout
# drafts are not orders yet; a later order.updated with a paid status records them.
RECORDABLE = {"processing", "completed", "on-hold", "refunded"}
POS_SOURCES = {"pos", "woocommerce-pos", "pos-rest-api"}


def _gmt(body: dict[str, Any], key: str) -> Any:
    return r.moment(body.get(f"{key}_gmt")) or r.moment(body.get(key))


# Marketing opt-in: WooCommerce itself keeps none; the customer's `meta_data` carries the opt-in plugins keep
# — Mailchimp for WooCommerce's `mailchimp_woocommerce_is_subscribed` ("1" subscribed, "0" / "" not,
# "unsubscribed"), or a checkout field `marketing_opt_in` / `newsletter` (yes/no). The first key found wins.
OPT_IN_KEYS = ("mailchimp_woocommerce_is_subscribed", "marketing_opt_in", "_marketing_opt_in", "newsletter")
OPT_IN_VALUES = {
    "1": "granted",
    "yes": "granted",
    "true": "granted",
    "subscribed": "granted",
    "0": "none",
    "no": "none",
    "false": "none",
    "": "none",
    "unsubscribed": "withdrawn",
}


def _marketing_opt_in(
    body: dict[str, Any], *, key: str = "", unsubscribed: str = "", subscribed: str = ""
) -> dict[str, str]:
    """
    {"email": state} from the customer's meta_data, or {} when no opt-in plugin reported anything. The
    connection's own meta key (`key`, with its `unsubscribed` and `subscribed` values: what we write when a
    customer unsubscribes or subscribes here) is read first.
    """
    keys = (key, *(known for known in OPT_IN_KEYS if known != key)) if key else OPT_IN_KEYS
    by_key = {}
    for item in r.items(body.get("meta_data"), limit=200):
        name, value = item.get("key"), item.get("value")
        if isinstance(name, str) and name in keys and isinstance(value, (str, int, bool)):
            by_key[name] = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
    values = {
        **OPT_IN_VALUES,
        **({subscribed.strip().lower(): "granted"} if subscribed.strip() else {}),
        **({unsubscribed.strip().lower(): "withdrawn"} if unsubscribed.strip() else {}),
    }
    for name in keys:
        if name in by_key and by_key[name] in values:
            return {"email": values[by_key[name]]}
    return {}


def customer(
    body: dict[str, Any], *, consent_key: str = "", consent_unsubscribed: str = "", consent_subscribed: str = ""
) -> CustomerShape:
    remote = r.remote_id(body.get("id"))
    if not remote or remote == "0":
        raise Unusable("the customer has no id")
    billing, shipping = r.obj(body.get("billing")), r.obj(body.get("shipping"))
    return CustomerShape(
        remote_id=remote,
        email=r.email(body.get("email")) or r.email(billing.get("email")),
        phone=r.text(billing.get("phone"), limit=32),
        first_name=r.text(body.get("first_name") or billing.get("first_name"), limit=100),
        last_name=r.text(body.get("last_name") or billing.get("last_name"), limit=100),
        country=r.country(billing.get("country")) or r.country(shipping.get("country")),
        consent=_marketing_opt_in(
            body, key=consent_key, unsubscribed=consent_unsubscribed, subscribed=consent_subscribed
        ),
        account_enabled=True,  # a WooCommerce customer is a registered account
        account_state="registered",
        updated_at=_gmt(body, "date_modified"),
    )


def order(body: dict[str, Any]) -> OrderShape:
    remote = r.remote_id(body.get("id"))
    currency = r.currency(body.get("currency"))
    total = r.money(body.get("total"))
    if not remote or not currency or total is None:
        raise Unusable("the order has no id, currency or total")
    billing, shipping = r.obj(body.get("billing")), r.obj(body.get("shipping"))
    customer_remote = r.remote_id(body.get("customer_id"))
    embedded = None
    if customer_remote and customer_remote != "0":
        # Only the id and the billing contact: applied to a new customer, never over a newer profile.
        embedded = CustomerShape(
            remote_id=customer_remote,
            email=r.email(billing.get("email")),
            first_name=r.text(billing.get("first_name"), limit=100),
            last_name=r.text(billing.get("last_name"), limit=100),
            phone=r.text(billing.get("phone"), limit=32),
            country=r.country(billing.get("country")),
        )
    lines = []
    for item in r.items(body.get("line_items")):
        quantity = r.integer(item.get("quantity"))
        subtotal = r.money(item.get("subtotal"))
        if quantity < 1 or subtotal is None or subtotal < 0:
            continue
        lines.append(
            LineShape(
                title=r.text(item.get("name")) or "Item",
                quantity=quantity,
                unit_price=(subtotal / quantity).quantize(Decimal("0.01")),
                remote_product_id=r.remote_id(item.get("product_id")) if item.get("product_id") else "",
                sku=r.text(item.get("sku"), limit=64),
            )
        )
    status = body.get("status")
    date_modified = _gmt(body, "date_modified")
    return OrderShape(
        remote_id=remote,
        name=f"#{r.text(body.get('number'), limit=60) or remote}",
        currency=currency,
        lines=lines,
        total=total,
        customer=embedded,
        email=r.email(billing.get("email")),
        discount_total=r.money(body.get("discount_total")) or Decimal("0"),
        shipping_total=r.money(body.get("shipping_total")) or Decimal("0"),
        tax_total=r.money(body.get("total_tax")) or Decimal("0"),
        channel="pos" if body.get("created_via") in POS_SOURCES else "online",
        shipping_country=r.country(shipping.get("country")) or r.country(billing.get("country")),
        discount_codes=[
            r.text(line.get("code"), limit=64)
            for line in r.items(body.get("coupon_lines"), limit=20)
            if line.get("code")
        ],
        placed_at=_gmt(body, "date_created"),
        cancelled_at=date_modified if status == "cancelled" else None,
        updated_at=date_modified,
        refunds=[
            RefundShape(
                remote_id=f"refund-{r.remote_id(item.get('id'))}",
                order_remote_id=remote,
                amount=abs(r.money(item.get("total")) or Decimal("0")),
                reason=r.text(item.get("reason")),
                at=date_modified,
            )
            for item in r.items(body.get("refunds"), limit=100)
            if r.remote_id(item.get("id"))
        ],
        recordable=status in RECORDABLE,
    )
