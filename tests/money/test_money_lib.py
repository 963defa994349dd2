from decimal import Decimal

import pytest

from loyalty_site.lib.money import (
    CurrencyError,
    currency_code,
    minor_units,
    money_format,
    money_round,
    rate_clean,
    to_shop,
)


def test_minor_units_come_from_cldr():
    assert (minor_units("JPY"), minor_units("USD"), minor_units("EUR"), minor_units("KWD")) == (0, 2, 2, 3)


def test_rounding_is_half_to_even_at_the_currency_minor_units():
    assert [money_round(value, "JPY") for value in ("2.5", "3.5", "20640.49", "-0.5")] == [
        Decimal("2"),
        Decimal("4"),
        Decimal("20640"),
        Decimal("-0"),
    ]
    assert [money_round(value, "KWD") for value in ("1.2345", "1.2355", "0.0005")] == [
        Decimal("1.234"),
        Decimal("1.236"),
        Decimal("0.000"),
    ]
    assert [money_round(value, "USD") for value in ("0.125", "0.135", "138.288")] == [
        Decimal("0.12"),
        Decimal("0.14"),
        Decimal("138.29"),
    ]


def test_conversion_to_the_shop_currency_rounds_once(settings):
    settings.SHOP_CURRENCY = "USD"
    assert to_shop(Decimal("20640"), rate=Decimal("0.0067")) == Decimal("138.29")  # 138.288
    assert to_shop(Decimal("0.05"), rate=Decimal("0.1")) == Decimal("0.00")  # 0.005 -> even
    settings.SHOP_CURRENCY = "JPY"
    assert to_shop(Decimal("10.00"), rate=Decimal("149.25")) == Decimal("1492")  # 1492.5 -> even


def test_currency_codes_and_rates_are_checked():
    assert currency_code(" eur ") == "EUR"
    for bad in ("XYZ", "EURO", "", None, "12$"):
        with pytest.raises(CurrencyError):
            currency_code(bad)
    assert rate_clean("1.08") == Decimal("1.080000000000")
    for bad in ("0", "-1", "abc", "NaN", "Infinity"):
        with pytest.raises(CurrencyError):
            rate_clean(bad)


def test_display_keeps_the_currency():
    assert money_format(Decimal("20640"), "JPY") == "¥20,640"
    assert money_format(Decimal("1234.5"), "USD") == "$1,234.50"
    assert money_format(Decimal("12"), "EUR") == "€12.00"
    assert money_format(Decimal("1.25"), "KWD") == "KWD 1.250"
    assert money_format(None, "USD") == ""
