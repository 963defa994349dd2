"""Every operator and quantifier of the condition language, in BOTH evaluators (in memory and SQL)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.customers import services
from apps.customers.models import Customer
from apps.tagging.services import product_tags_set, tags_add
from loyalty_site.lib.conditions import (
    ConditionInvalid,
    EvaluationContext,
    audience_queryset,
    condition_evaluate,
    condition_validate,
)
from tests.factories import CustomerFactory, ProductFactory, make_order

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def both(condition, customer, *, now=NOW):
    """(in-memory result, SQL result) for one customer; the condition must validate first."""
    assert condition_validate(condition, scopes=("customer",), audience=True) == []
    customer = Customer.objects.get(pk=customer.pk)
    memory = condition_evaluate(condition, EvaluationContext(customer=customer, now=now)).result
    sql = audience_queryset(condition, now=now, base=Customer.objects.all()).filter(pk=customer.pk).exists()
    return memory, sql


def check(condition, customer, expected, *, now=NOW):
    assert both(condition, customer, now=now) == (expected, expected)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "ana@EXAMPLE.com", True),
        ("eq", "ana@example.co", False),
        ("ne", "ANA@example.com", False),
        ("ne", "bob@example.com", True),
        ("in", ["x@y.z", "Ana@Example.com"], True),
        ("in", ["x@y.z"], False),
        ("not_in", ["x@y.z"], True),
        ("not_in", ["ana@example.com"], False),
        ("contains", "EXAMPLE", True),
        ("contains", "examples", False),
        ("not_contains", "example", False),
        ("not_contains", "zzz", True),
        ("contains_any", ["nope", "@EX"], True),
        ("contains_any", ["nope", "zz"], False),
        ("starts_with", "ANA@", True),
        ("starts_with", "na@", False),
        ("ends_with", ".COM", True),
        ("ends_with", ".org", False),
        ("is_set", None, True),
        ("is_not_set", None, False),
    ],
)
def test_text_operators_are_case_insensitive_in_both_evaluators(op, value, expected):
    customer = CustomerFactory(email="ana@example.com")
    condition = {"field": "customer.email", "op": op}
    if value is not None:
        condition["value"] = value
    check(condition, customer, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Summer dress for HER", True),
        ("her", True),
        ("Gift (her) box", True),
        ("Hermes scarf", False),
        ("Mother's day", False),
        ("Ladies-only", True),
        ("Gentlemen", False),
    ],
)
def test_contains_words_any_matches_whole_words_only(text, expected):
    customer = CustomerFactory(first_name=text)
    condition = {"field": "customer.first_name", "op": "contains_words_any", "value": ["her", "ladies"]}
    check(condition, customer, expected)


def test_empty_text_is_not_set_and_ne_still_holds():
    customer = CustomerFactory(country="")
    check({"field": "customer.country", "op": "is_set"}, customer, False)
    check({"field": "customer.country", "op": "is_not_set"}, customer, True)
    check({"field": "customer.country", "op": "ne", "value": "FR"}, customer, True)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 150.5, True),
        ("eq", "150.50", True),  # numeric strings keep money exact through JSON
        ("eq", "150.5", True),
        ("ne", 150, True),
        ("gt", 150, True),
        ("gt", 150.5, False),
        ("gte", 150.5, True),
        ("lt", 151, True),
        ("lt", 150.5, False),
        ("lte", 150.5, True),
        ("in", [1, 150.5], True),
        ("not_in", [1, 150.5], False),
        ("is_set", None, True),
    ],
)
def test_money_operators_on_the_summary_column(op, value, expected):
    customer = CustomerFactory()
    make_order(customer, total="120.00", placed_at=NOW - timedelta(days=40))
    make_order(customer, total="30.50", placed_at=NOW - timedelta(days=2))
    condition = {"field": "customer.total_spent", "op": op}
    if value is not None:
        condition["value"] = value
    check(condition, customer, expected)


def test_total_spent_is_net_of_refunds_and_cancellations_with_and_without_window():
    customer = CustomerFactory()
    old = make_order(customer, total="500.00", placed_at=NOW - timedelta(days=60))
    recent = make_order(customer, total="100.00", placed_at=NOW - timedelta(days=5))
    cancelled = make_order(customer, total="70.00", placed_at=NOW - timedelta(days=3))
    services.refund_create(order=recent, amount="40.00")
    services.order_cancel(order=cancelled)
    assert old.pk

    check({"field": "customer.total_spent", "op": "eq", "value": 560}, customer, True)
    check({"field": "customer.total_spent", "window": {"days": 30}, "op": "eq", "value": 60}, customer, True)
    check({"field": "customer.orders_count", "window": {"days": 30}, "op": "eq", "value": 1}, customer, True)
    check({"field": "customer.orders_count", "op": "eq", "value": 2}, customer, True)
    check({"field": "customer.refunded_total", "op": "eq", "value": 40}, customer, True)


def test_window_includes_an_order_placed_exactly_n_days_ago_and_excludes_one_second_earlier():
    on_boundary, outside = CustomerFactory(), CustomerFactory()
    make_order(on_boundary, total="10.00", placed_at=NOW - timedelta(days=30))
    make_order(outside, total="10.00", placed_at=NOW - timedelta(days=30, seconds=1))
    condition = {"field": "customer.orders_count", "window": {"days": 30}, "op": "gte", "value": 1}

    check(condition, on_boundary, True)
    check(condition, outside, False)
    check({"field": "customer.total_spent", "window": {"days": 30}, "op": "eq", "value": 0}, outside, True)


def test_no_orders_in_window_counts_zero_and_days_since_last_order_is_not_set():
    customer = CustomerFactory()
    check({"field": "customer.orders_count", "window": {"days": 30}, "op": "eq", "value": 0}, customer, True)
    check({"field": "customer.days_since_last_order", "op": "is_not_set"}, customer, True)
    check({"field": "customer.days_since_last_order", "op": "gte", "value": 0}, customer, False)
    check({"not": {"field": "customer.days_since_last_order", "op": "lt", "value": 5}}, customer, True)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 30, True),
        ("eq", 31, False),
        ("ne", 30, False),
        ("gt", 29, True),
        ("gt", 30, False),
        ("gte", 30, True),
        ("lt", 31, True),
        ("lt", 30, False),
        ("lte", 30, True),
        ("in", [1, 30], True),
        ("not_in", [30], False),
    ],
)
def test_days_since_last_order_counts_whole_days(op, value, expected):
    customer = CustomerFactory()
    make_order(customer, placed_at=NOW - timedelta(days=30, hours=23))
    check({"field": "customer.days_since_last_order", "op": op, "value": value}, customer, expected)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gte", {"days_ago": 30}, True),
        ("gt", {"days_ago": 30}, False),
        ("lt", {"days_ago": 29}, True),
        ("lte", {"days_ago": 31}, False),
        ("eq", {"days_ago": 30}, True),
        ("eq", "2026-05-16", True),
        ("ne", "2026-05-16", False),
        ("gt", "2026-05-16", True),
        ("lt", "2026-05-16T12:00:01+00:00", True),
        ("lt", "2026-05-16T12:00:00+00:00", False),
        ("lt", {"days_from_now": 1}, True),
    ],
)
def test_datetime_compares_with_absolute_and_relative_dates(op, value, expected):
    customer = CustomerFactory()
    make_order(customer, placed_at=NOW - timedelta(days=30))  # 2026-05-16 12:00 UTC
    check({"field": "customer.last_order_at", "op": op, "value": value}, customer, expected)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "1990-05-17", True),
        ("ne", "1990-05-17", False),
        ("lt", "1990-05-18", True),
        ("gt", "1990-05-17", False),
        ("lte", {"days_ago": 365 * 30}, True),
        ("is_set", None, True),
    ],
)
def test_date_field_operators(op, value, expected):
    customer = CustomerFactory(birthday=date(1990, 5, 17))
    condition = {"field": "customer.birthday", "op": op}
    if value is not None:
        condition["value"] = value
    check(condition, customer, expected)


def test_unset_date_is_false_for_every_comparison_and_true_for_is_not_set():
    customer = CustomerFactory(birthday=None)
    for op in ("eq", "ne", "gt", "gte", "lt", "lte"):
        check({"field": "customer.birthday", "op": op, "value": "1990-01-01"}, customer, False)
    check({"field": "customer.birthday", "op": "is_not_set"}, customer, True)


def test_boolean_and_choice_fields():
    customer = CustomerFactory(accepts_marketing=False, state="guest")
    check({"field": "customer.accepts_marketing", "op": "eq", "value": False}, customer, True)
    check({"field": "customer.accepts_marketing", "op": "ne", "value": False}, customer, False)
    check({"field": "customer.state", "op": "eq", "value": "guest"}, customer, True)
    check({"field": "customer.state", "op": "in", "value": ["registered", "disabled"]}, customer, False)
    check({"field": "customer.state", "op": "not_in", "value": ["registered", "disabled"]}, customer, True)


def test_custom_attributes_compare_as_text():
    customer = CustomerFactory(attributes={"weather_zone": "North-East"})
    check({"field": "customer.attributes.weather_zone", "op": "eq", "value": "north-east"}, customer, True)
    check({"field": "customer.attributes.weather_zone", "op": "starts_with", "value": "NORTH"}, customer, True)
    check({"field": "customer.attributes.missing", "op": "is_not_set"}, customer, True)
    check({"field": "customer.attributes.missing", "op": "ne", "value": "x"}, customer, False)


def test_tags_contains_is_case_insensitive_and_quantifiers_follow_empty_list_rules():
    tagged, untagged = CustomerFactory(), CustomerFactory()
    tags_add(customer=tagged, names=["VIP", "Staff member"])

    check({"field": "customer.tags", "op": "contains", "value": "vip"}, tagged, True)
    check({"field": "customer.tags", "op": "contains", "value": "VI"}, tagged, False)
    check({"field": "customer.tags", "op": "not_contains", "value": "vip"}, tagged, False)
    check({"field": "customer.tags", "op": "contains_any", "value": ["x", "STAFF MEMBER"]}, tagged, True)
    check({"field": "customer.tags", "op": "is_set"}, tagged, True)
    check({"field": "customer.tags", "op": "is_not_set"}, untagged, True)
    starts_s = {"field": "tag.name", "op": "starts_with", "value": "s"}
    check({"field": "customer.tags", "op": "any", "where": starts_s}, tagged, True)
    check({"field": "customer.tags", "op": "all", "where": starts_s}, tagged, False)
    check({"field": "customer.tags", "op": "none", "where": starts_s}, tagged, False)
    # Empty list: any -> false, all -> true, none -> true.
    check({"field": "customer.tags", "op": "any", "where": starts_s}, untagged, False)
    check({"field": "customer.tags", "op": "all", "where": starts_s}, untagged, True)
    check({"field": "customer.tags", "op": "none", "where": starts_s}, untagged, True)


def test_currencies_lists_currencies_of_non_cancelled_orders():
    customer = CustomerFactory()
    make_order(customer, currency="EUR", placed_at=NOW - timedelta(days=1))
    services.order_cancel(order=make_order(customer, currency="GBP", placed_at=NOW - timedelta(days=1)))

    check({"field": "customer.currencies", "op": "contains", "value": "eur"}, customer, True)
    check({"field": "customer.currencies", "op": "contains", "value": "GBP"}, customer, False)
    check(
        {"field": "customer.currencies", "op": "all", "where": {"field": "tag.name", "op": "eq", "value": "EUR"}},
        customer,
        True,
    )


def test_groups_all_any_not_and_empty_groups():
    customer = CustomerFactory(country="VN", email="a@b.vn")
    yes = {"field": "customer.country", "op": "eq", "value": "vn"}
    no = {"field": "customer.country", "op": "eq", "value": "fr"}

    check({"all": [yes, {"not": no}]}, customer, True)
    check({"all": [yes, no]}, customer, False)
    check({"any": [no, yes]}, customer, True)
    check({"any": [no, no]}, customer, False)
    check({"all": []}, customer, True)
    check({"any": []}, customer, False)
    check({"not": {"any": []}}, customer, True)


def test_design_example_condition_selects_the_inactive_high_spender():
    inactive, active, staff = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer in (inactive, active, staff):
        make_order(customer, total="600.00", placed_at=NOW - timedelta(days=90))
    make_order(active, total="10.00", placed_at=NOW - timedelta(days=3))
    tags_add(customer=staff, names=["staff"])
    condition = {
        "all": [
            {"field": "customer.orders_count", "window": {"days": 30}, "op": "eq", "value": 0},
            {"field": "customer.total_spent", "op": "gt", "value": 500},
            {"not": {"field": "customer.tags", "op": "contains", "value": "Staff"}},
        ]
    }

    assert list(audience_queryset(condition, now=NOW, base=Customer.objects.all()).values_list("pk", flat=True)) == [
        inactive.pk
    ]
    for customer, expected in ((inactive, True), (active, False), (staff, False)):
        check(condition, customer, expected)


def test_datetime_eq_compares_local_calendar_days(settings):
    settings.TIME_ZONE = "Asia/Ho_Chi_Minh"  # UTC+7: 20:00 UTC on the 10th is the 11th locally
    customer = CustomerFactory()
    make_order(customer, placed_at=datetime(2026, 6, 10, 20, 0, tzinfo=UTC))

    check({"field": "customer.last_order_at", "op": "eq", "value": "2026-06-11"}, customer, True)
    check({"field": "customer.last_order_at", "op": "eq", "value": "2026-06-10"}, customer, False)
    check({"field": "customer.last_order_at", "op": "gte", "value": "2026-06-11"}, customer, True)
    check({"field": "customer.last_order_at", "op": "eq", "value": {"days_ago": 4}}, customer, True, now=NOW)


def test_malformed_conditions_raise_in_both_evaluators_instead_of_answering():
    customer = CustomerFactory()
    condition = {"any": [{"field": "customer.total_spent", "op": "contains", "value": "x"}]}
    context = EvaluationContext(customer=customer, now=NOW)

    with pytest.raises(ConditionInvalid) as raised:
        condition_evaluate(condition, context)
    assert [str(error) for error in raised.value.errors] == ['any[0].op: "contains" is not allowed for a money field']
    with pytest.raises(ConditionInvalid):
        audience_queryset(condition, now=NOW, base=Customer.objects.all())


def test_an_audience_is_one_query_whatever_the_condition(django_assert_num_queries):
    customers = [CustomerFactory() for _ in range(3)]
    make_order(customers[0], total="900.00", placed_at=NOW - timedelta(days=60))
    tags_add(customer=customers[1], names=["VIP"])
    condition = {
        "any": [
            {"field": "customer.tags", "op": "contains", "value": "vip"},
            {
                "all": [
                    {"field": "customer.orders_count", "window": {"days": 30}, "op": "eq", "value": 0},
                    {"field": "customer.total_spent", "window": {"days": 90}, "op": "gt", "value": 500},
                ]
            },
        ]
    }

    with django_assert_num_queries(1):
        matched = sorted(
            audience_queryset(condition, now=NOW, base=Customer.objects.all()).values_list("pk", flat=True)
        )
    assert matched == sorted([customers[0].pk, customers[1].pk])


def test_product_tags_of_bought_products_ignore_cancelled_orders_and_other_customers():
    buyer, canceller, stranger = CustomerFactory(), CustomerFactory(), CustomerFactory()
    stroller, lego = ProductFactory(title="Stroller"), ProductFactory(title="Lego")
    product_tags_set(product=stroller, names=["Kids & Baby"])
    product_tags_set(product=lego, names=["Toys"])
    make_order(buyer, products=[stroller], placed_at=NOW - timedelta(days=3))
    make_order(canceller, products=[lego], placed_at=NOW - timedelta(days=3))
    services.order_cancel(order=make_order(canceller, products=[stroller], placed_at=NOW - timedelta(days=2)))
    # the stroller also sits on a cancelled order of someone else: the buyer still counts
    services.order_cancel(order=make_order(stranger, products=[stroller], placed_at=NOW - timedelta(days=1)))
    kids = {"field": "customer.product_tags", "op": "contains", "value": "kids & baby"}

    check(kids, buyer, True)
    check(kids, canceller, False)
    check(kids, stranger, False)
    check({"field": "customer.product_tags", "op": "is_not_set"}, stranger, True)
    check(
        {"field": "customer.product_tags", "op": "all", "where": {"field": "tag.name", "op": "eq", "value": "toys"}},
        canceller,
        True,
    )


def test_relative_dates_follow_the_frozen_clock():
    customer = CustomerFactory(created_at=NOW - timedelta(days=10))
    joined_this_week = {"field": "customer.created_at", "op": "gte", "value": {"days_ago": 7}}
    joined_ten_days_ago = {"field": "customer.created_at", "op": "eq", "value": {"days_ago": 10}}

    with time_machine.travel(NOW - timedelta(days=4), tick=False):
        check(joined_this_week, customer, True, now=timezone.now())
    with time_machine.travel(NOW, tick=False):
        check(joined_this_week, customer, False, now=timezone.now())
        check(joined_ten_days_ago, customer, True, now=timezone.now())
