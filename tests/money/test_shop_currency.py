"""Money in the shop currency: the ¥/€/$ mix, refunds, earning, tiers, and where rates come from."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.customers import services as customer_services
from apps.customers.currency import exchange_rate_set
from apps.customers.models import Customer, Order
from apps.customers.services import LineInput
from apps.loyalty import services
from apps.loyalty.models import Membership, Program, Tier
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

PLACED = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def rates():
    exchange_rate_set(currency="JPY", day=date(2026, 11, 1), rate="0.0067")
    exchange_rate_set(currency="EUR", day=date(2026, 11, 1), rate="1.08")


def _order(customer, amount, currency, *, placed_at=PLACED, **extra) -> Order:
    order, _ = customer_services.order_create(
        customer=customer,
        currency=currency,
        lines=[LineInput(title="Item", quantity=1, unit_price=Decimal(amount))],
        placed_at=placed_at,
        **extra,
    )
    return order


def _gold_ladder(program: Program) -> None:
    Tier.objects.create(program=program, name="Bronze", rank=1, threshold=Decimal("0"))
    Tier.objects.create(program=program, name="Silver", rank=2, threshold=Decimal("200"))
    Tier.objects.create(program=program, name="Gold", rank=3, threshold=Decimal("1000"))


def test_yen_euro_and_dollar_orders_give_exact_shop_totals_points_and_tier(rates):
    program = program_make(tier_basis="amount_spent")
    _gold_ladder(program)
    customer = CustomerFactory()

    yen = _order(customer, "20640", "JPY")
    euro = _order(customer, "50.00", "EUR")
    dollar = _order(customer, "30.00", "USD")

    assert [(o.currency, o.total, o.shop_currency, o.exchange_rate, o.total_shop) for o in (yen, euro, dollar)] == [
        ("JPY", Decimal("20640.00"), "USD", Decimal("0.0067"), Decimal("138.29")),  # 138.288
        ("EUR", Decimal("50.00"), "USD", Decimal("1.08"), Decimal("54.00")),
        ("USD", Decimal("30.00"), "USD", Decimal("1"), Decimal("30.00")),
    ]
    customer.refresh_from_db()
    assert (customer.orders_count, customer.total_spent, customer.refunded_total) == (
        3,
        Decimal("222.29"),
        Decimal("0.00"),
    )
    earned = [sum(lot.amount for lot in services.order_points_earn(order=o)) for o in (yen, euro, dollar)]
    assert earned == [138, 54, 30]  # not 20,640 points for the yen order
    membership = Membership.objects.get(customer=customer)
    assert services.tier_recalculate(membership=membership).tier.name == "Silver"  # 222.29 USD, not Gold
    assert services.tiers_recalculate_all() == 0  # the set-based scan agrees


def test_refunds_move_the_shop_figures_at_the_order_rate_and_a_full_refund_nets_to_zero(rates):
    program_make()
    customer = CustomerFactory()
    yen = _order(customer, "20640", "JPY")
    _order(customer, "30.00", "USD")
    (lot,) = services.order_points_earn(order=yen)
    assert lot.amount == 138

    first, _ = customer_services.refund_create(order=yen, amount="10320")
    services.order_points_reverse(order=yen)
    customer.refresh_from_db()
    yen.refresh_from_db()
    assert first.amount_shop == Decimal("69.14")  # 69.144
    assert (yen.refunded_total, yen.refunded_total_shop) == (Decimal("10320.00"), Decimal("69.14"))
    assert (customer.total_spent, customer.refunded_total) == (Decimal("99.15"), Decimal("69.14"))
    lot.refresh_from_db()
    assert lot.reversed_amount == 69

    second, _ = customer_services.refund_create(order=yen, amount="10320")
    customer.refresh_from_db()
    assert second.amount_shop == Decimal("69.15")  # what is left of 138.29, not another 69.14
    assert (customer.total_spent, customer.refunded_total) == (Decimal("30.00"), Decimal("138.29"))

    customer_services.order_cancel(order=_order(customer, "50", "EUR"))
    customer.refresh_from_db()
    assert (customer.orders_count, customer.total_spent) == (2, Decimal("30.00"))
    assert customer_services.customer_summary_recompute(customer=customer).total_spent == Decimal("30.00")


def test_a_program_may_set_its_own_earning_rate_for_a_currency(rates):
    program_make(currency_earning_rates={"JPY": "0.01"}, min_order_total=Decimal("100"))
    customer = CustomerFactory()

    yen_points = sum(lot.amount for lot in services.order_points_earn(order=_order(customer, "20640", "JPY")))
    euro_points = sum(lot.amount for lot in services.order_points_earn(order=_order(customer, "50", "EUR")))
    small_yen = services.order_points_earn(order=_order(customer, "14000", "JPY"))  # 93.80 USD < 100 USD minimum

    assert (yen_points, euro_points, small_yen) == (206, 0, [])  # EUR 54.00 USD is under the minimum too


def test_program_refuses_bad_currency_earning_rates():
    program = Program(name="P", slug="p", currency_earning_rates={"jpy": "1", "XYZ": "1", "EUR": "-1", "GBP": "x"})
    with pytest.raises(ValidationError) as error:
        program.full_clean()
    assert error.value.message_dict["currency_earning_rates"] == [
        "jpy: Write 'jpy' as 'JPY'.",
        "XYZ: 'XYZ' is not an ISO 4217 currency code.",
        "EUR: points per unit must be a number ≥ 0.",
        "GBP: 'x' is not a number.",
    ]


def test_the_rate_used_is_the_latest_on_or_before_the_order_day(rates):
    exchange_rate_set(currency="JPY", day=date(2026, 11, 25), rate="0.0070")
    customer = CustomerFactory()

    before = _order(customer, "1000", "JPY", placed_at=datetime(2026, 11, 24, 23, 59, tzinfo=UTC))
    on_the_day = _order(customer, "1000", "JPY", placed_at=datetime(2026, 11, 25, 0, 0, tzinfo=UTC))
    later = _order(customer, "1000", "JPY", placed_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))

    assert [o.total_shop for o in (before, on_the_day, later)] == [Decimal("6.70"), Decimal("7.00"), Decimal("7.00")]


def test_the_integrator_may_send_the_rate_or_the_shop_total(rates):
    customer = CustomerFactory()

    with_rate = _order(customer, "20640", "JPY", exchange_rate="0.0065")
    with_total = _order(customer, "20640", "JPY", total_shop="140.00")

    assert (with_rate.exchange_rate, with_rate.total_shop) == (Decimal("0.0065"), Decimal("134.16"))
    assert (with_total.exchange_rate, with_total.total_shop) == (Decimal("0.006782945736"), Decimal("140.00"))
    customer.refresh_from_db()
    assert customer.total_spent == Decimal("274.16")


@pytest.mark.parametrize(
    ("currency", "extra", "path", "message"),
    [
        ("CHF", {}, "currency", "no exchange rate for CHF on 2026-11-20 (nor any earlier day)"),
        ("XYZ", {}, "currency", "'XYZ' is not an ISO 4217 currency code."),
        ("USD", {"exchange_rate": "1.1"}, "exchange_rate", "USD is the shop currency: its rate is 1."),
        ("USD", {"total_shop": "9"}, "total_shop", "USD is the shop currency: total_shop must equal total (10.00)."),
        ("CHF", {"exchange_rate": "-2"}, "exchange_rate", "An exchange rate must be a positive number."),
    ],
)
def test_an_order_that_cannot_be_converted_is_refused_and_nothing_changes(currency, extra, path, message):
    customer = CustomerFactory()

    with pytest.raises(ValidationError) as error:
        _order(customer, "10", currency, **extra)

    ((field, (text,)),) = error.value.message_dict.items()
    assert (field, text[: len(message)]) == (path, message)
    customer.refresh_from_db()
    assert (Order.objects.count(), customer.orders_count, customer.total_spent) == (0, 0, Decimal("0.00"))


def test_carts_and_draft_orders_keep_their_shop_total(rates):
    customer = CustomerFactory()
    lines = [{"product_id": None, "title": "Item", "quantity": 2, "unit_price": "1000"}]

    cart, _ = customer_services.cart_upsert(customer=customer, currency="JPY", lines=lines, external_id="cart-1")
    draft, _ = customer_services.draft_order_create(customer=customer, currency="EUR", lines=lines, total="10")

    assert (cart.total, cart.exchange_rate, cart.total_shop) == (
        Decimal("2000.00"),
        Decimal("0.0067"),
        Decimal("13.40"),
    )
    assert (draft.total, draft.exchange_rate, draft.total_shop) == (Decimal("10.00"), Decimal("1.08"), Decimal("10.80"))
    with pytest.raises(ValidationError) as error:
        customer_services.cart_upsert(customer=customer, currency="CHF", lines=lines, external_id="cart-2")
    assert list(error.value.message_dict) == ["currency"]
    assert Customer.objects.get(pk=customer.pk).carts.count() == 1


def test_the_program_api_refuses_bad_currency_earning_rates_with_their_path():
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory(username="boss"))

    response = client.post(
        "/api/v1/loyalty/programs/", {"name": "Club", "slug": "club", "currency_earning_rates": {"JPY": "-1"}}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "currency_earning_rates", "message": "JPY: points per unit must be a number ≥ 0.", "code": "invalid"}
    ]
    assert not Program.objects.exists()
