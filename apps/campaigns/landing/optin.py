"""TEMPORARY (not to be landed): until consent lands, nothing is sent and nothing is confirmed."""

from __future__ import annotations

from apps.customers.models import Customer

requested: list[tuple[int, str, str]] = []


def optin_request(customer: Customer, *, channel: str, source: str) -> None:
    requested.append((customer.pk, channel, source))


def optin_confirmed(customer: Customer, *, channel: str = "email") -> bool:
    return False
