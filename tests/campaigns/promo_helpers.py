"""Builders shared by the promotions tests."""

from decimal import Decimal
from typing import Any

from apps.campaigns.promotions import services
from apps.campaigns.promotions.eligibility import Cart, CartLine


def campaign_with(
    name: str,
    *,
    incentives: list[dict[str, Any]],
    limits: list[dict[str, Any]] | None = None,
    code: str | None = None,
    automatic: bool = False,
    **fields: Any,
):
    fields.setdefault("status", "active")
    campaign = services.campaign_create(name=name, type="automatic" if automatic else "discount_codes", **fields)
    for index, incentive in enumerate(incentives):
        services.incentive_create(campaign=campaign, position=index, **incentive)
    for limit in limits or []:
        services.limit_create(campaign=campaign, **limit)
    if code:
        services.code_create(campaign=campaign, code=code)
    return campaign


def cart(*lines: tuple[str, int, str], shipping: str = "0", currency: str = "USD") -> Cart:
    return Cart(
        currency=currency,
        shipping=Decimal(shipping),
        lines=[
            CartLine(index=index, title=title, quantity=quantity, unit_price=Decimal(price))
            for index, (title, quantity, price) in enumerate(lines)
        ],
    )


def checkout_json(*lines: tuple[str, int, str], codes=(), shipping="0", **extra) -> dict:
    return {
        "currency": "USD",
        "shipping": shipping,
        "lines": [{"title": title, "quantity": quantity, "unit_price": price} for title, quantity, price in lines],
        "codes": list(codes),
        **extra,
    }
