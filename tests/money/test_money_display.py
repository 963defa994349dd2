"""Money is shown with its currency: admin lists, builder inputs, run traces, cockpit rewards."""

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.urls import reverse

from apps.automations.builder.boot import catalog_payload
from apps.automations.builder.describe import step_story
from apps.customers import services as customer_services
from apps.customers.currency import exchange_rate_set
from apps.loyalty.models import Reward
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def test_builder_money_inputs_carry_the_shop_currency_not_a_hard_coded_dollar(settings):
    settings.SHOP_CURRENCY = "EUR"
    catalog = catalog_payload()
    currencies = {field["name"]: field["currency"] for field in catalog["fields"]}

    assert catalog["shop_currency"] == {"code": "EUR", "symbol": "€"}
    assert (currencies["customer.total_spent"], currencies["order.total_shop"], currencies["cart.total_shop"]) == (
        "€",
        "€",
        "€",
    )
    assert (currencies["order.total"], currencies["line.unit_price"], currencies["customer.email"]) == ("", "", "")


def test_run_trace_values_show_their_currency():
    step = SimpleNamespace(
        kind="condition",
        inputs={
            "condition": {
                "all": [
                    {"field": "order.total", "op": "gt", "value": 100},
                    {"field": "order.total_shop", "op": "gt", "value": 100},
                    {"field": "customer.total_spent", "op": "gt", "value": 100},
                    {"field": "order.currency", "op": "eq", "value": "JPY"},
                ]
            }
        },
        outcome={"values": {"all[0]": "20640.00", "all[1]": "138.29", "all[2]": "1234.5", "all[3]": "JPY"}},
    )

    story = step_story(step, {}, {"order": "JPY"})

    assert story["values"] == [
        ("Order total", "¥20,640"),
        ("Order total (shop currency)", "$138.29"),
        ("Total spent", "$1,234.50"),
        ("Order currency", "JPY"),
    ]


def test_admin_order_list_shows_both_moneys_with_currencies(admin_client):
    exchange_rate_set(currency="JPY", day=date(2026, 1, 1), rate="0.0067")
    make_order(CustomerFactory(), total="20640", currency="JPY")

    page = admin_client.get(reverse("admin:customers_order_changelist")).content.decode()

    assert "¥20,640" in page and "$138.29" in page


def test_admin_draft_order_and_cart_lists_show_both_moneys_with_currencies(admin_client):
    exchange_rate_set(currency="JPY", day=date(2026, 1, 1), rate="0.0067")
    customer = CustomerFactory()
    lines = [{"title": "Teapot", "quantity": 2, "unit_price": "5160"}]
    customer_services.draft_order_create(customer=customer, currency="JPY", lines=lines)
    customer_services.cart_upsert(customer=customer, currency="JPY", lines=lines, external_id="chk-1")

    drafts = admin_client.get(reverse("admin:customers_draftorder_changelist")).content.decode()
    carts = admin_client.get(reverse("admin:customers_cart_changelist")).content.decode()

    for page in (drafts, carts):
        assert "Total (shop currency)" in page and "¥10,320" in page and "$69.14" in page


def test_cockpit_reward_value_is_in_the_shop_currency():
    program = program_make()
    fixed = Reward(program=program, name="5 off", kind="fixed_discount", value=Decimal("5"), points_cost=500)
    percent = Reward(program=program, name="10% off", kind="percentage_discount", value=Decimal("10"), points_cost=9)
    prize = Reward(program=program, name="Tote bag", kind="material_prize", points_cost=1200)

    assert (fixed.value_display, percent.value_display, prize.value_display) == ("$5.00", "10%", "")
