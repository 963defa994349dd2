"""
`checkout_parse` reads a plain checkout body without DRF's field machinery: it must give exactly what
`CheckoutSerializer` gives (values, customer, cart), and leave every other body to the serializer.
"""

from decimal import Decimal

import pytest
from rest_framework.exceptions import ValidationError

from apps.campaigns.promotions.api.serializers import CheckoutSerializer, _checkout_plain, _NotPlain, checkout_parse
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LINES = [
    {"title": " shirt ", "quantity": 2, "unit_price": "30"},
    {"title": "", "sku": "S-1", "product_id": None, "quantity": 10000, "unit_price": "0.5"},
    {"quantity": 1, "unit_price": 7, "product_id": 3},
    {"quantity": 1, "unit_price": "999999999999.99", "sku": " x "},
]


def serializer_answer(body):
    serializer = CheckoutSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "USD", "lines": LINES},
        {"currency": " usd ", "lines": LINES, "codes": [" save5 ", "VIP"], "shipping": "4.9", "channel": " pos "},
        {"currency": "USD", "lines": [], "codes": [], "shipping": 0, "customer_id": None},
        {"currency": "USD", "lines": LINES[:1], "customer_external_id": ""},
    ],
)
def test_a_plain_body_is_read_without_drf_as_the_serializer_reads_it(body):
    _checkout_plain(body)  # (the plain path takes it)

    assert dict(checkout_parse(body)) == serializer_answer(body)


def test_a_customer_is_looked_up_the_same_way():
    customer = CustomerFactory(external_id="c-1")
    by_id = {"currency": "USD", "lines": LINES[:1], "customer_id": customer.pk}
    by_external = {"currency": "USD", "lines": LINES[:1], "customer_external_id": "c-1"}

    assert checkout_parse(by_id)["customer"] == checkout_parse(by_external)["customer"] == customer
    assert dict(checkout_parse(by_id)) == serializer_answer(by_id)
    unknown = {**by_id, "customer_id": customer.pk + 1000}
    with pytest.raises(ValidationError) as fast:
        checkout_parse(unknown)
    with pytest.raises(ValidationError) as slow:
        serializer_answer(unknown)
    assert fast.value.detail == slow.value.detail == {"customer_id": ["No customer with this id."]}


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "USD", "lines": [{"quantity": 1, "unit_price": "1.005"}]},  # too many decimals
        {"currency": "USD", "lines": [{"quantity": 0, "unit_price": "1"}]},  # below the minimum
        {"currency": "USD", "lines": [{"quantity": True, "unit_price": "1"}]},  # a boolean is no integer
        {"currency": "USD", "lines": [{"quantity": 1, "unit_price": 1.5}]},  # a float: the serializer reads it
        {"currency": "USD", "lines": [{"quantity": 1, "unit_price": "1", "color": "red"}]},  # unknown key
        {"currency": "USD", "lines": [{"quantity": 1, "unit_price": "1", "title": "a\x00b"}]},  # NUL
        {"currency": "USD", "lines": [], "codes": ["  "]},  # a blank code
        {"currency": "USD", "lines": [], "codes": ["x" * 65]},  # a code too long
        {"currency": "EUR", "lines": []},  # not the shop currency
        {"currency": "USD", "lines": [], "session": "s-1"},  # reserve/redeem fields: the serializer's
        {"currency": "USD"},  # no lines
        ["not", "an", "object"],
    ],
)
def test_any_other_body_goes_to_the_serializer(body):
    with pytest.raises(_NotPlain):
        _checkout_plain(body)
    try:
        expected = serializer_answer(body)
    except ValidationError as error:
        with pytest.raises(ValidationError) as refused:
            checkout_parse(body)
        assert refused.value.detail == error.detail
    else:
        assert dict(checkout_parse(body)) == expected
        assert checkout_parse(body)["lines"] == expected["lines"]


def test_amounts_are_decimals_to_the_cent_like_the_serializer_gives():
    body = {"currency": "USD", "lines": [{"quantity": 1, "unit_price": "5"}], "shipping": "1.5"}

    parsed = checkout_parse(body)

    assert (parsed["shipping"], parsed["lines"][0]["unit_price"]) == (Decimal("1.50"), Decimal("5.00"))
    assert str(parsed["cart"].lines[0].unit_price) == str(serializer_answer(body)["cart"].lines[0].unit_price)
