"""
Double opt-in for form sign-ups, through the consent service (`apps.customers.consent`): the one place this
package asks for a confirmation e-mail and asks whether an address is confirmed already.
"""

from __future__ import annotations

from apps.customers.consent import services as consent
from apps.customers.models import Customer


def optin_request(customer: Customer, *, channel: str, source: str) -> None:
    """Record the consent as pending and send the confirmation link (consent's double opt-in)."""
    consent.request_double_opt_in(customer, channel=channel, source=source)


def optin_confirmed(customer: Customer, *, channel: str = "email") -> bool:
    """Whether the customer's marketing consent on `channel` is confirmed already (a returning subscriber)."""
    return consent.allows(customer, channel=channel, purpose="marketing") is None
