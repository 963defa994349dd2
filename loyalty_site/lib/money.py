"""
Money helpers: currency codes, minor units, rounding, conversion to the shop currency, display.

Model-free (imports no app). Minor units come from the CLDR data shipped with babel (JPY 0, USD 2,
KWD 3), not from a hand-written table.

Rounding rule: ROUND_HALF_EVEN ("banker's rounding") to the currency's minor units. A converted
amount is rounded once, after the multiplication (`amount x rate`), never per step, so the error of
one conversion is at most half a minor unit and, over many orders, halves do not drift upwards.

Exchange rates are quoted as "shop-currency units for one unit of the other currency": with USD as
the shop currency, EUR 1.08 means 1 EUR = 1.08 USD, JPY 0.0067 means 1 JPY = 0.0067 USD.
"""

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel.numbers import format_currency, get_currency_precision, is_currency
from django.conf import settings

ROUNDING = ROUND_HALF_EVEN
# Rates are stored with this many decimals (enough for VND or IDR against USD: 0.000039...).
RATE_DECIMAL_PLACES = 12
RATE_MAX_DIGITS = 24
# Every amount column stores 2 decimals; a shop currency needs at most that many minor units.
STORED_DECIMAL_PLACES = 2
# Symbols and digit grouping of displayed amounts (`$1,234.50`, `€12.00`, `¥20,640`, `KWD 1.250`).
DISPLAY_LOCALE = "en_US"


class CurrencyError(ValueError):
    """An unknown currency code, or an exchange rate that cannot be had."""

    def __init__(self, message: str, *, path: str = "currency") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def shop_currency() -> str:
    """The shop (base) currency every total, threshold, budget and report is kept in."""
    return str(settings.SHOP_CURRENCY).upper()


def currency_code(value: Any, *, path: str = "currency") -> str:
    """The ISO 4217 code, upper-cased; refuses codes CLDR does not know (`XYZ`)."""
    code = str(value or "").strip().upper()
    if len(code) != 3 or not code.isalpha() or not is_currency(code):
        raise CurrencyError(f"{value!r} is not an ISO 4217 currency code.", path=path)
    return code


# CLDR does not change while the process runs, and the hot paths (validation, pricing) ask per line and per
# incentive: each answer is kept (an unknown code raises and is not kept).
@lru_cache(maxsize=1024)
def minor_units(currency: str) -> int:
    """How many decimals the currency uses (JPY 0, EUR 2, KWD 3), from CLDR."""
    return int(get_currency_precision(currency_code(currency)))


@lru_cache(maxsize=1024)
def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def decimals_error(amount: Decimal | int | str, currency: str) -> str | None:
    """
    Why `amount` is not an amount of `currency`: more decimals than its minor units (JPY 10.5, USD 1.005).
    Trailing zeros do not count (JPY 10.00 is 10). None when it fits.
    """
    try:
        value = Decimal(str(amount))
        units = minor_units(currency)
    except (InvalidOperation, CurrencyError):
        return None  # not a number / not a currency: other checks name that
    if not value.is_finite() or value == value.quantize(quantum(currency), rounding=ROUNDING):
        return None
    if units == 0:
        return f"{currency} has no minor unit: give a whole amount."
    return f"{currency} has {units} decimal place{'s' if units != 1 else ''}: give at most {units}."


def money_round(amount: Decimal | int | str, currency: str) -> Decimal:
    """`amount` rounded to the currency's minor units, half to even."""
    return Decimal(str(amount)).quantize(quantum(currency), rounding=ROUNDING)


def rate_clean(value: Any, *, path: str = "exchange_rate") -> Decimal:
    """A positive exchange rate with at most RATE_DECIMAL_PLACES decimals (rounded half to even)."""
    try:
        rate = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise CurrencyError(f"{value!r} is not a number.", path=path) from None
    if not rate.is_finite() or rate <= 0:
        raise CurrencyError("An exchange rate must be a positive number.", path=path)
    rate = rate.quantize(Decimal(1).scaleb(-RATE_DECIMAL_PLACES), rounding=ROUNDING)
    if rate.adjusted() >= RATE_MAX_DIGITS - RATE_DECIMAL_PLACES or rate == 0:
        raise CurrencyError("The exchange rate is out of range.", path=path)
    return rate


def to_shop(amount: Decimal | int | str, *, rate: Decimal) -> Decimal:
    """An amount converted to the shop currency with `rate`, rounded once to its minor units."""
    return money_round(Decimal(str(amount)) * rate, shop_currency())


def rate_implied(amount: Decimal, amount_shop: Decimal) -> Decimal:
    """The rate that turns `amount` into `amount_shop` (when the integrator sends shop amounts)."""
    return (amount_shop / amount).quantize(Decimal(1).scaleb(-RATE_DECIMAL_PLACES), rounding=ROUNDING)


def no_rate_message(currency: str, day: date) -> str:
    return (
        f"no exchange rate for {currency} on {day.isoformat()} (nor any earlier day): load one "
        f"(admin, POST /api/v1/exchange-rates/, `import_csv exchange_rates`) or send exchange_rate "
        f"or the shop-currency total ({shop_currency()}) with the record."
    )


def money_format(amount: Decimal | int | str | None, currency: str) -> str:
    """Display form with the currency (`$1,234.50`, `¥20,640`, `€12.00`); empty for no amount."""
    if amount is None or amount == "":
        return ""
    value = Decimal(str(amount))
    try:
        code = currency_code(currency)
    except CurrencyError:
        return f"{value} {currency}".strip()
    text = format_currency(value, code, locale=DISPLAY_LOCALE, currency_digits=True)
    # Currencies without a symbol in the locale come out as "KWD1.250": separate the code.
    return text.replace(code, f"{code} ", 1) if code in text and f"{code} " not in text else text


def currency_symbol(currency: str) -> str:
    """The symbol shown next to money inputs (`$`, `€`, `¥`, or the code when CLDR has none)."""
    from babel.numbers import get_currency_symbol

    return get_currency_symbol(currency, locale=DISPLAY_LOCALE)
