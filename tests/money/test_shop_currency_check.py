"""SHOP_CURRENCY is checked at start-up: a currency whose minor units do not fit the stored amounts is refused."""

from django.test import override_settings

from apps.customers.checks import shop_currency_check


def test_two_and_zero_decimal_shop_currencies_pass():
    for code in ("USD", "EUR", "JPY"):
        with override_settings(SHOP_CURRENCY=code):
            assert shop_currency_check() == []


def test_a_three_decimal_shop_currency_is_refused_with_its_reason():
    with override_settings(SHOP_CURRENCY="KWD"):
        [error] = shop_currency_check()

    assert (error.id, error.msg) == ("customers.E002", "SHOP_CURRENCY KWD has 3 decimals; amounts are stored with 2.")


def test_an_unknown_shop_currency_is_refused():
    with override_settings(SHOP_CURRENCY="XYZ"):
        [error] = shop_currency_check()

    assert (error.id, error.msg) == ("customers.E001", "SHOP_CURRENCY: 'XYZ' is not an ISO 4217 currency code.")
