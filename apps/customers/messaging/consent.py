"""
The one place messaging asks whether a customer may be messaged, and for the unsubscribe headers.

Until the consent package (apps/customers/consent) is on main this reads the customer row: a blocked
customer gets nothing; marketing needs `accepts_marketing` (an unsubscribed customer has `unsubscribed_at`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.customers.choices import CustomerStatus

from .choices import DeliveryReason, Purpose

if TYPE_CHECKING:
    from apps.customers.models import Customer


def consent_refusal(customer: Customer | None, *, channel: str, purpose: str) -> str | None:
    """None when `customer` may receive this message; else the reason code (DeliveryReason)."""
    if customer is None:
        return None  # a fixed recipient (a staff notification), not a customer
    if customer.status == CustomerStatus.BLOCKED:
        return DeliveryReason.BLOCKED
    if purpose != Purpose.MARKETING:
        return None
    if not customer.accepts_marketing:
        return DeliveryReason.UNSUBSCRIBED if customer.unsubscribed_at else DeliveryReason.NO_CONSENT
    return None


def unsubscribe_headers(customer: Customer | None, *, channel: str, purpose: str) -> dict[str, str]:
    """RFC 8058 List-Unsubscribe headers for marketing e-mail (from the consent package once it lands)."""
    return {}
