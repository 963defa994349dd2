"""How an address is compared with the suppression list."""

from ..models import Customer
from .choices import Channel


def address_normalise(address: str, *, channel: str) -> str:
    """The form an address is compared in: e-mail lower-case and trimmed; a phone trimmed (compared as stored)."""
    address = (address or "").strip()
    if channel == Channel.EMAIL:
        return address.lower()
    return address


def customer_address(customer: Customer, *, channel: str) -> str:
    """The address a message on `channel` goes to ("" for in-app: the customer is the address)."""
    if channel == Channel.EMAIL:
        return address_normalise(customer.email, channel=channel)
    if channel == Channel.SMS:
        return address_normalise(customer.phone, channel=channel)
    return ""
