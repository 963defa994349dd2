"""The one rule of what a customer's consent is, with or without a recorded row (services and selectors)."""

from ..models import Customer
from .choices import Channel, ConsentStatus, Purpose
from .models import Consent


def legacy_marketing_status(customer: Customer) -> str | None:
    """E-mail marketing of a customer without a consent row, read from the mirror columns."""
    if customer.accepts_marketing:
        return ConsentStatus.GRANTED
    if customer.unsubscribed_at is not None:
        return ConsentStatus.WITHDRAWN
    return None


def effective_status(customer: Customer, row: Consent | None, *, channel: str, purpose: str) -> str | None:
    if row is not None:
        return row.status
    # Customers without rows (loaded before consents existed, bulk COPY imports): e-mail and in-app
    # marketing follow the legacy flag; SMS marketing needs an explicit opt-in.
    if purpose == Purpose.MARKETING and channel in (Channel.EMAIL, Channel.IN_APP):
        return legacy_marketing_status(customer)
    return None
