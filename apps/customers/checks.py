"""Start-up checks of the money configuration every total relies on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from loyalty_site.lib.money import CurrencyError, minor_units

# Amount columns hold two decimals: a shop currency with more minor units (KWD, BHD, OMR: 3) would be
# rounded a second time when stored, so totals would drift. Refuse it at start-up instead of losing fils.
STORED_DECIMALS = 2


@register()
def shop_currency_check(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """SHOP_CURRENCY must be an ISO 4217 code whose minor units fit the stored amounts."""
    value = getattr(settings, "SHOP_CURRENCY", "")
    try:
        units = minor_units(value)
    except CurrencyError as error:
        return [Error(f"SHOP_CURRENCY: {error}", id="customers.E001")]
    if units > STORED_DECIMALS:
        return [
            Error(
                f"SHOP_CURRENCY {str(value).upper()} has {units} decimals; amounts are stored with {STORED_DECIMALS}.",
                hint="Use a shop currency with at most two minor units (orders may still be paid in it).",
                id="customers.E002",
            )
        ]
    return []
