"""
The platforms' records in one neutral shape. `shopify.py` and `woocommerce.py` read a webhook body into
these; `apply.py` writes them through the same services as the API. Amounts are Decimals in `currency`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# Marketing consent as the messaging model names it: granted / pending / withdrawn / none.
CONSENT_STATES = ("granted", "pending", "withdrawn", "none")


class RetryLater(Exception):
    """The delivery cannot be applied yet (a refund for an order not received yet): retried with back-off."""


class Unusable(Exception):
    """The delivery can never be applied as sent (no customer to attach it to, no id): ignored, with why."""


@dataclass
class CustomerShape:
    remote_id: str
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    country: str = ""
    tags: list[str] | None = None  # None: the payload says nothing about tags
    consent: dict[str, str] = field(default_factory=dict)  # channel ("email", "sms") -> consent state
    # channel -> when the shop's consent state was set (Shopify `consent_updated_at`), when the payload says
    consent_at: dict[str, datetime] = field(default_factory=dict)
    account_enabled: bool | None = None  # True: the shop says the customer has an active account
    # Our account state for it (guest / invited / registered), "" when the payload does not say.
    account_state: str = ""
    updated_at: datetime | None = None


@dataclass
class LineShape:
    title: str
    quantity: int
    unit_price: Decimal
    remote_product_id: str = ""
    sku: str = ""


@dataclass
class RefundShape:
    remote_id: str
    order_remote_id: str
    amount: Decimal
    reason: str = ""
    at: datetime | None = None


@dataclass
class OrderShape:
    remote_id: str
    name: str
    currency: str
    lines: list[LineShape]
    total: Decimal
    customer: CustomerShape | None = None
    email: str = ""
    discount_total: Decimal = Decimal("0")
    shipping_total: Decimal = Decimal("0")
    tax_total: Decimal = Decimal("0")
    total_shop: Decimal | None = None  # the same total in our SHOP_CURRENCY when the shop sent it
    channel: str = "online"
    location_id: str = ""
    shipping_country: str = ""
    discount_codes: list[str] = field(default_factory=list)
    placed_at: datetime | None = None
    cancelled_at: datetime | None = None
    updated_at: datetime | None = None
    refunds: list[RefundShape] = field(default_factory=list)
    recordable: bool = True  # False: not an order we count yet (WooCommerce "pending payment")


@dataclass
class CartShape:
    remote_id: str
    currency: str
    lines: list[LineShape]
    total: Decimal
    customer: CustomerShape | None = None
    email: str = ""
    checkout_url: str = ""
    abandoned_at: datetime | None = None
    recovered_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class DraftShape:
    remote_id: str
    currency: str
    lines: list[LineShape]
    total: Decimal
    customer: CustomerShape | None = None
    email: str = ""
    total_shop: Decimal | None = None
    updated_at: datetime | None = None


@dataclass
class ProductShape:
    remote_id: str
    title: str
    price: Decimal = Decimal("0")
    sku: str = ""
    tags: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass
class OrderEditShape:
    """A shop's order edit notice (Shopify orders/edited): the edited totals come with the order's update."""

    order_remote_id: str
    additions: int = 0
    removals: int = 0
    at: datetime | None = None
