"""
The one place messaging asks the consent package (apps/customers/consent) whether a customer may be
messaged, for many customers at once (bulk runs), for the unsubscribe headers and footer link, and
reports hard bounces to its suppression list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.customers.consent import services as consent

from .choices import Channel, Purpose

if TYPE_CHECKING:
    from apps.customers.models import Customer

# Channels consent knows about; a webhook is a system integration, not a message to a person.
CONSENT_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.IN_APP)


def consent_refusal(customer: Customer | None, *, channel: str, purpose: str) -> str | None:
    """None when `customer` may receive this message; else the reason code (a DeliveryReason value)."""
    if customer is None or channel not in CONSENT_CHANNELS:
        return None  # a fixed recipient (a staff notification), not a customer
    return consent.allows(customer, channel=channel, purpose=purpose)


def consent_refusals_many(customers: list[Customer], *, channel: str, purpose: str) -> dict[int, str]:
    """
    customer id -> reason for those of `customers` who may not receive it: one set-based query for
    everyone (`customers_allowed`), then the reason of each refused customer only.
    """
    if not customers or channel not in CONSENT_CHANNELS:
        return {}
    from apps.customers.models import Customer

    ids = [customer.pk for customer in customers]
    allowed = set(
        consent.customers_allowed(Customer.objects.filter(pk__in=ids), channel=channel, purpose=purpose).values_list(
            "pk", flat=True
        )
    )
    refusals: dict[int, str] = {}
    for customer in customers:
        if customer.pk not in allowed:
            refusals[customer.pk] = consent.allows(customer, channel=channel, purpose=purpose) or "no_consent"
    return refusals


def unsubscribe_headers(customer: Customer | None, *, channel: str, purpose: str) -> dict[str, str]:
    """RFC 8058 List-Unsubscribe + List-Unsubscribe-Post for marketing e-mail, {} otherwise."""
    if customer is None or channel != Channel.EMAIL or purpose != Purpose.MARKETING:
        return {}
    return consent.unsubscribe_headers(customer, channel=channel, purpose=purpose)


def unsubscribe_url(customer: Customer | None, *, channel: str, purpose: str) -> str:
    """The signed footer link of a marketing e-mail ("" when there is none)."""
    if customer is None or channel != Channel.EMAIL or purpose != Purpose.MARKETING:
        return ""
    return consent.unsubscribe_url(customer, channel=channel, purpose=purpose)


def hard_bounce(address: str, *, channel: str) -> None:
    """A provider refused the address for good: it goes on the suppression list."""
    if address and channel in (Channel.EMAIL, Channel.SMS):
        consent.suppress(address, channel=channel, reason="hard_bounce")
