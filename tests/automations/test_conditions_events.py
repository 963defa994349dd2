"""Order, line, cart, product, event, store and location fields: the in-memory evaluator over one event."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.customers import services
from apps.customers.services import LineInput
from apps.tagging.services import product_tags_set
from loyalty_site.lib.conditions import EvaluationContext, condition_evaluate
from tests.factories import CustomerFactory, ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
HER_LINES = {"field": "line.title", "op": "contains_words_any", "value": ["women", "female", "ladies", "her"]}


def evaluate(condition, **objects):
    context = EvaluationContext(customer=objects.pop("customer", None), now=NOW, **objects)
    return condition_evaluate(condition, context)


@pytest.fixture
def order():
    customer = CustomerFactory()
    dress, scarf = ProductFactory(title="Dress"), ProductFactory(title="Scarf")
    product_tags_set(product=dress, names=["Women", "Summer"])
    order, _ = services.order_create(
        customer=customer,
        currency="eur",
        channel="pos",
        shipping_country="de",
        placed_at=NOW - timedelta(hours=2),
        lines=[
            LineInput(title="Summer dress for her", quantity=2, unit_price=Decimal("40.00"), product=dress),
            LineInput(title="Hermes-style scarf", quantity=1, unit_price=Decimal("25.50"), product=scarf),
        ],
    )
    return order


def test_order_fields(order):
    assert evaluate({"field": "order.total", "op": "eq", "value": 105.5}, order=order).result is True
    assert evaluate({"field": "order.subtotal", "op": "gt", "value": 105.5}, order=order).result is False
    assert evaluate({"field": "order.currency", "op": "eq", "value": "EUR"}, order=order).result is True
    assert evaluate({"field": "order.channel", "op": "eq", "value": "pos"}, order=order).result is True
    assert evaluate({"field": "order.shipping_country", "op": "in", "value": ["fr", "de"]}, order=order).result is True
    assert evaluate({"field": "order.status", "op": "eq", "value": "paid"}, order=order).result is True
    assert evaluate({"field": "order.placed_at", "op": "gte", "value": {"days_ago": 1}}, order=order).result is True
    assert evaluate({"field": "order.placed_at", "op": "eq", "value": "2026-06-15"}, order=order).result is True


def test_line_quantifiers_with_whole_word_matching(order):
    any_her = {"field": "order.lines", "op": "any", "where": HER_LINES}
    all_her = {"field": "order.lines", "op": "all", "where": HER_LINES}
    no_her = {"field": "order.lines", "op": "none", "where": HER_LINES}

    assert evaluate(any_her, order=order).result is True
    assert evaluate(all_her, order=order).result is False  # "Hermes" is not the word "her"
    assert evaluate(no_her, order=order).result is False


def test_line_numbers_and_product_tags(order):
    two_or_more = {"field": "order.lines", "op": "any", "where": {"field": "line.quantity", "op": "gte", "value": 2}}
    cheap = {"field": "order.lines", "op": "all", "where": {"field": "line.unit_price", "op": "lt", "value": 40}}
    women = {
        "field": "order.lines",
        "op": "any",
        "where": {"field": "line.product.tags", "op": "contains", "value": "women"},
    }
    assert evaluate(two_or_more, order=order).result is True
    assert evaluate(cheap, order=order).result is False
    assert evaluate(women, order=order).result is True


def test_empty_lists_any_false_all_true_none_true():
    cart = services.cart_upsert(customer=CustomerFactory(), currency="USD", lines=[], total=0)[0]
    for op, expected in (("any", False), ("all", True), ("none", True)):
        condition = {"field": "cart.lines", "op": op, "where": {"field": "line.title", "op": "eq", "value": "x"}}
        assert evaluate(condition, cart=cart).result is expected
    assert evaluate({"field": "cart.lines", "op": "is_not_set"}, cart=cart).result is True


def test_cart_lines_are_dicts_and_line_fields_work_over_them():
    product = ProductFactory(title="Stroller")
    product_tags_set(product=product, names=["Kids & Baby"])
    cart, _ = services.cart_upsert(
        customer=CustomerFactory(),
        currency="USD",
        lines=[{"product_id": product.pk, "title": "Baby stroller", "quantity": 1, "unit_price": "199.00"}],
    )
    kids = {"field": "line.product.tags", "op": "contains", "value": "kids & baby"}
    assert evaluate({"field": "cart.lines", "op": "any", "where": kids}, cart=cart).result is True
    assert (
        evaluate(
            {
                "field": "cart.lines",
                "op": "all",
                "where": {"field": "line.title", "op": "starts_with", "value": "baby"},
            },
            cart=cart,
        ).result
        is True
    )
    assert evaluate({"field": "cart.total", "op": "eq", "value": 199}, cart=cart).result is True


def test_product_fields_and_tag_quantifier():
    product = ProductFactory(title="Lego set")
    product_tags_set(product=product, names=["Kids", "Toys"])
    assert evaluate({"field": "product.title", "op": "contains", "value": "LEGO"}, product=product).result is True
    assert evaluate({"field": "product.tags", "op": "contains_any", "value": ["toys", "x"]}, product=product).result
    every_short = {
        "field": "product.tags",
        "op": "all",
        "where": {"field": "tag.name", "op": "ends_with", "value": "s"},
    }
    assert evaluate(every_short, product=product).result is True


def test_custom_event_name_and_any_property():
    event, _ = services.custom_event_record(
        customer=CustomerFactory(), name="review_posted", properties={"source": "App", "rating": 5}
    )
    assert evaluate({"field": "event.name", "op": "eq", "value": "Review_Posted"}, custom_event=event).result is True
    assert evaluate({"field": "event.properties.source", "op": "eq", "value": "app"}, custom_event=event).result
    assert evaluate({"field": "event.properties.rating", "op": "eq", "value": "5"}, custom_event=event).result
    assert evaluate({"field": "event.properties.missing", "op": "is_not_set"}, custom_event=event).result is True


def test_store_location_and_draft_order():
    store = StoreFactory(name="Downtown", code="downtown")
    assert evaluate({"field": "store.code", "op": "eq", "value": "DOWNTOWN"}, store=store).result is True
    near = {"field": "location.distance_m", "op": "lte", "value": 150}
    assert evaluate(near, location={"distance_m": 120.4}).result is True
    assert evaluate(near, location={"distance_m": 150.01}).result is False
    assert evaluate(near).result is False
    draft, _ = services.draft_order_create(
        customer=CustomerFactory(), currency="USD", lines=[{"title": "Quote", "quantity": 1, "unit_price": "300"}]
    )
    assert evaluate({"field": "draft_order.total", "op": "gte", "value": 300}, draft_order=draft).result is True


def test_missing_objects_make_comparisons_false_and_is_not_set_true():
    assert evaluate({"field": "order.total", "op": "ne", "value": 1}).result is False
    assert evaluate({"field": "order.total", "op": "is_not_set"}).result is True
    assert evaluate({"field": "customer.email", "op": "ne", "value": "x"}).result is False
    assert evaluate({"field": "order.lines", "op": "all", "where": HER_LINES}).result is True


def test_evaluation_records_the_values_read_by_path(order):
    condition = {
        "all": [
            {"field": "order.total", "op": "gt", "value": 100},
            {"field": "order.lines", "op": "any", "where": HER_LINES},
            {"field": "customer.tags", "op": "is_set"},
        ]
    }
    evaluation = evaluate(condition, order=order, customer=order.customer)
    assert evaluation.result is False
    assert evaluation.values == {
        "all[0]": "105.50",
        "all[1]": {"count": 2},
        "all[1].where": "Summer dress for her",
        "all[2]": [],
    }


def test_one_evaluation_reads_each_figure_once(order, django_assert_num_queries):
    customer = order.customer
    condition = {
        "all": [
            {"field": "customer.orders_count", "window": {"days": 7}, "op": "gte", "value": 1},
            {"field": "customer.orders_count", "window": {"days": 7}, "op": "lte", "value": 5},
            {"field": "customer.tags", "op": "not_contains", "value": "x"},
            {"field": "customer.tags", "op": "not_contains", "value": "y"},
        ]
    }
    with django_assert_num_queries(2):
        assert evaluate(condition, order=order, customer=customer).result is True
