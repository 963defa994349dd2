"""Validation of conditions: every error with its JSON path and reason; limits on depth and size."""

import pytest

from loyalty_site.lib.conditions import (
    MAX_DEPTH,
    MAX_NODES,
    ConditionError,
    ConditionNotCompilable,
    condition_compile,
    condition_validate,
)
from loyalty_site.lib.conditions.catalog import catalog_describe, field_get

ORDER_SCOPES = ("customer", "order")


def errors(condition, *, path="steps[2].if", scopes=ORDER_SCOPES, audience=False):
    return [str(error) for error in condition_validate(condition, path=path, scopes=scopes, audience=audience)]


def test_a_valid_condition_has_no_errors():
    condition = {
        "all": [
            {"field": "customer.orders_count", "window": {"days": 30}, "op": "eq", "value": 0},
            {"field": "customer.total_spent", "op": "gt", "value": 500},
            {"not": {"field": "customer.tags", "op": "contains", "value": "Staff"}},
            {
                "field": "order.lines",
                "op": "any",
                "where": {"field": "line.title", "op": "contains_any", "value": ["women", "female", "ladies", "her"]},
            },
        ]
    }
    assert errors(condition) == []
    assert errors(None) == []


def test_operator_not_allowed_for_the_type_is_reported_at_its_path():
    condition = {
        "all": [
            {"field": "customer.total_spent", "op": "gt", "value": 1},
            {"field": "customer.email", "op": "gte", "value": "a"},
        ]
    }
    assert errors(condition) == ['steps[2].if.all[1].op: "gte" is not allowed for a text field']


def test_every_error_is_reported_not_only_the_first():
    condition = {
        "any": [
            {"field": "customer.nope", "op": "eq", "value": 1},
            {"field": "customer.total_spent", "op": "gt", "value": "lots"},
            {"field": "customer.email", "op": "eq", "value": "a", "colour": "red"},
            {"field": "customer.country", "op": "in", "value": []},
            {"field": "customer.accepts_marketing", "op": "eq", "value": "yes"},
            {"field": "customer.last_order_at", "op": "gt", "value": {"weeks_ago": 2}},
            {"field": "customer.birthday", "op": "eq", "value": "17/05/1990"},
            {"field": "customer.orders_count", "op": "eq", "value": 1.5},
            {"field": "customer.total_spent", "op": "eq", "value": 1.005},
            {"field": "customer.state", "op": "eq", "value": "banned"},
            {"field": "customer.email", "op": "is_set", "value": "x"},
            {"field": "customer.email", "op": "eq"},
            {"field": "customer.email"},
        ]
    }
    assert errors(condition, path="") == [
        'any[0].field: unknown field "customer.nope"',
        "any[1].value: 'lots' is not a number",
        'any[2].colour: unknown key "colour"',
        'any[3].value: "in" takes a non-empty list',
        "any[4].value: 'yes' is not true or false",
        'any[5].value: a relative date is {"days_ago": N} or {"days_from_now": N}',
        "any[6].value: '17/05/1990' is not an ISO date, an ISO date-time or a relative date",
        "any[7].value: 1.5 is not a whole number",
        "any[8].value: 1.005 has more than two decimals",
        "any[9].value: 'banned' is not one of guest, invited, registered, disabled",
        'any[10].value: "is_set" takes no value',
        'any[11].value: "eq" needs a value',
        "any[12].op: an operator is required",
    ]


def test_list_values_are_checked_item_by_item():
    condition = {"field": "customer.orders_count", "op": "in", "value": [1, "two", True]}
    assert errors(condition, path="where") == [
        "where.value[1]: 'two' is not a number",
        "where.value[2]: True is not a number",
    ]


def test_field_out_of_scope_for_the_trigger():
    condition = {"field": "cart.total", "op": "gt", "value": 10}
    assert errors(condition, path="trigger.where") == [
        'trigger.where.field: "cart.total" is not available here (it needs a cart)'
    ]


def test_item_fields_are_only_available_inside_their_quantifier():
    assert errors({"field": "line.title", "op": "eq", "value": "x"}, path="") == [
        'field: "line.title" is not available here (it needs a line)'
    ]
    inside = {"field": "order.lines", "op": "all", "where": {"field": "line.title", "op": "eq", "value": "x"}}
    assert errors(inside, path="") == []


def test_quantifier_needs_where_and_rejects_value():
    assert errors({"field": "order.lines", "op": "any", "value": 1}, path="") == [
        'value: "any" takes "where", not "value"',
        'where: "any" needs a "where" condition over each item',
    ]
    assert errors({"field": "customer.email", "op": "eq", "value": "a", "where": {}}, path="") == [
        'where: "where" is only for any / all / none, not "eq"'
    ]


def test_window_only_on_windowed_fields_and_within_bounds():
    assert errors({"field": "customer.email", "op": "eq", "value": "a", "window": {"days": 3}}, path="") == [
        'window: "customer.email" has no window'
    ]
    assert errors({"field": "customer.orders_count", "op": "eq", "value": 1, "window": {"days": 0}}, path="") == [
        "window.days: days must be a whole number between 1 and 3650"
    ]
    assert errors({"field": "customer.orders_count", "op": "eq", "value": 1, "window": {"weeks": 2}}, path="") == [
        'window: a window is {"days": N}'
    ]


def test_groups_must_be_well_formed():
    assert errors({"all": {"field": "customer.email"}}, path="") == ['all: "all" takes a list of conditions']
    assert errors({"all": [], "any": []}, path="") == ["\"all\" cannot be combined with 'any'"]
    assert errors({"not": "x"}, path="") == ["not: a condition must be an object"]
    assert errors({"field": ""}, path="x") == ["x.field: a field name is required"]


def test_depth_limit():
    leaf = {"field": "customer.email", "op": "is_set"}
    condition = leaf
    for _ in range(MAX_DEPTH):
        condition = {"not": condition}
    path = "where" + ".not" * MAX_DEPTH
    assert errors(condition, path="where") == [f"{path}: the condition is nested deeper than {MAX_DEPTH} levels"]
    assert errors(condition["not"], path="where") == []


def test_size_limit_reports_once():
    leaf = {"field": "customer.email", "op": "is_set"}
    assert errors({"any": [leaf] * (MAX_NODES - 1)}, path="") == []
    assert errors({"any": [leaf] * (MAX_NODES + 5)}, path="") == [
        f"any[{MAX_NODES - 1}]: the condition has more than {MAX_NODES} nodes"
    ]


def test_audience_refuses_fields_without_sql_and_compile_raises_with_the_path():
    condition = {"all": [{"field": "order.total", "op": "gt", "value": 10}]}
    assert errors(condition, path="audience", audience=True) == [
        'audience.all[0].field: "order.total" cannot be used in an audience'
    ]
    with pytest.raises(ConditionNotCompilable) as raised:
        condition_compile(condition, now=None)
    assert raised.value.path == "all[0].field"


def test_wildcard_fields_resolve_safe_keys_only():
    assert field_get("customer.attributes.weather_zone").key == "weather_zone"
    assert field_get("event.properties.source").scope == "event"
    with pytest.raises(KeyError):
        field_get("customer.attributes.a b")
    assert errors({"field": "customer.attributes.bad key!", "op": "is_set"}, path="") == [
        'field: unknown field "customer.attributes.bad key!"'
    ]


def test_condition_error_is_a_value_with_path_and_message():
    assert ConditionError(path="a.b", message="m") == ConditionError(path="a.b", message="m")
    assert str(ConditionError(path="", message="m")) == "m"


def test_catalog_describe_lists_fields_with_operators_and_labels():
    described = catalog_describe()
    by_name = {field["name"]: field for field in described["fields"]}

    assert by_name["customer.total_spent"] == {
        "name": "customer.total_spent",
        "type": "money",
        "label": "Total spent",
        "description": "Net of refunds and cancellations; with a window, orders placed in the last N days.",
        "scope": "customer",
        "operators": ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "is_set", "is_not_set"],
        "window": True,
        "window_units": ["days"],
        "item_scope": None,
        "suggest": None,
        "choices": [],
        "example": 500,
        "audience": True,
        "wildcard": False,
        "changed_by": ["order.created", "order.cancelled", "order.refunded", "order.updated"],
    }
    assert by_name["order.lines"]["item_scope"] == "line"
    assert by_name["order.lines"]["audience"] is False
    assert by_name["customer.tags"]["audience"] is True
    assert by_name["customer.state"]["choices"][0] == ["guest", "Guest"]
    assert by_name["customer.attributes.*"]["wildcard"] is True
    assert described["operators"]["contains_words_any"] == "contains any of the words"
    expected = {
        "customer.email", "customer.first_name", "customer.last_name", "customer.country",
        "customer.preferred_currency", "customer.state", "customer.accepts_marketing", "customer.created_at",
        "customer.birthday", "customer.attributes.*", "customer.orders_count", "customer.total_spent",
        "customer.last_order_at", "customer.first_order_at", "customer.days_since_last_order",
        "customer.refunded_total", "customer.currencies", "customer.tags", "order.total", "order.subtotal",
        "order.currency", "order.channel", "order.shipping_country", "order.status", "order.placed_at",
        "order.lines", "line.title", "line.quantity", "line.unit_price", "line.product.tags", "product.title",
        "product.tags", "cart.total", "cart.lines", "draft_order.total", "event.name", "event.properties.*",
        "store.name", "store.code", "location.distance_m", "tag.name",
    }  # fmt: skip
    assert expected <= set(by_name)
    assert [name for name in by_name if name.startswith("customer.") and not by_name[name]["audience"]] == []


def test_audience_refuses_outer_fields_inside_a_quantifier():
    condition = {
        "field": "customer.tags",
        "op": "any",
        "where": {
            "all": [{"field": "tag.name", "op": "eq", "value": "vip"}, {"field": "customer.email", "op": "is_set"}]
        },
    }
    assert errors(condition, path="audience", scopes=("customer",), audience=True) == [
        'audience.where.all[1].field: "customer.email" cannot be used inside a quantifier in an audience'
    ]
    assert errors(condition, path="audience", scopes=("customer",)) == []
