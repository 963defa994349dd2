"""
Windowed figures (orders count, spend in the last N days) compile set based: every operator at the
boundaries, in memory, in SQL (whole table, a bulk chunk's id range, a list of candidates) and for a
batch of customers read at once; and the SQL is one grouped query or an anti-join, never a subquery
per customer.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.customers import services
from apps.customers.models import Customer
from loyalty_site.lib.conditions import (
    EvaluationContext,
    Scope,
    audience_queryset,
    condition_evaluate,
    figures_prefetch,
)
from tests.factories import CustomerFactory, make_order

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
WINDOW = {"days": 30}


@pytest.fixture
def customers():
    """Customers with 0, 1, 2 and 3 orders in the window (100 each), plus older and cancelled orders."""
    made = []
    for in_window in range(4):
        customer = CustomerFactory()
        for _ in range(in_window):
            make_order(customer, total="100.00", placed_at=NOW - timedelta(days=3))
        make_order(customer, total="500.00", placed_at=NOW - timedelta(days=31))  # outside the window
        cancelled = make_order(customer, total="900.00", placed_at=NOW - timedelta(days=1))
        services.order_cancel(order=cancelled)
        made.append(customer)
    return made


def _selected(condition, customers, **scope):
    ids = [customer.pk for customer in customers]
    rows = list(Customer.objects.filter(pk__in=ids).order_by("pk"))
    memory = [row.pk for row in rows if condition_evaluate(condition, EvaluationContext(customer=row, now=NOW)).result]
    sql = sorted(
        audience_queryset(condition, now=NOW, base=Customer.objects.filter(pk__in=ids)).values_list("pk", flat=True)
    )
    chunk = sorted(
        audience_queryset(
            condition, now=NOW, base=Customer.objects.all(), scope=Scope(low=min(ids), high=max(ids) + 1)
        ).values_list("pk", flat=True)
    )
    candidates = sorted(
        audience_queryset(condition, now=NOW, base=Customer.objects.all(), scope=Scope(ids=ids)).values_list(
            "pk", flat=True
        )
    )
    contexts = [EvaluationContext(customer=row, now=NOW) for row in rows]
    figures_prefetch(condition, contexts)
    batch = [context.customer.pk for context in contexts if condition_evaluate(condition, context).result]
    assert memory == sql == chunk == candidates == batch, condition
    return [ids.index(pk) for pk in memory]


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 0, [0]),
        ("eq", 2, [2]),
        ("ne", 0, [1, 2, 3]),
        ("ne", 2, [0, 1, 3]),
        ("gt", 1, [2, 3]),
        ("gte", 3, [3]),
        ("gte", 0, [0, 1, 2, 3]),
        ("lt", 1, [0]),
        ("lt", 2, [0, 1]),
        ("lte", 0, [0]),
        ("lte", 2, [0, 1, 2]),
        ("in", [0, 3], [0, 3]),
        ("in", [0], [0]),
        ("not_in", [0, 1], [2, 3]),
        ("is_set", None, [0, 1, 2, 3]),
        ("is_not_set", None, []),
    ],
)
def test_windowed_orders_count_every_operator(customers, op, value, expected):
    condition = {"field": "customer.orders_count", "window": WINDOW, "op": op}
    if value is not None:
        condition["value"] = value
    assert _selected(condition, customers) == expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 0, [0]),
        ("gte", 200, [2, 3]),
        ("gt", 200, [3]),
        ("lt", 100, [0]),
        ("lte", 100, [0, 1]),
        ("ne", 300, [0, 1, 2]),
    ],
)
def test_windowed_spend_every_operator(customers, op, value, expected):
    condition = {"field": "customer.total_spent", "window": WINDOW, "op": op, "value": value}
    assert _selected(condition, customers) == expected


@pytest.mark.parametrize(
    ("count", "spend", "expected"),
    [
        ({"op": "gte", "value": 2}, {"op": "gte", "value": 300}, [3]),
        ({"op": "lt", "value": 3}, {"op": "gte", "value": 100}, [1, 2]),
        ({"op": "lt", "value": 3}, {"op": "lt", "value": 250}, [0, 1, 2]),  # both hold at zero: not merged
        ({"op": "eq", "value": 0}, {"op": "eq", "value": 0}, [0]),
    ],
)
def test_count_and_spend_over_the_same_window(customers, count, spend, expected):
    condition = {
        "all": [
            {"field": "customer.orders_count", "window": WINDOW, **count},
            {"field": "customer.total_spent", "window": WINDOW, **spend},
        ]
    }
    assert _selected(condition, customers) == expected
    assert _selected({"not": condition}, customers) == [index for index in range(4) if index not in expected]


def _sql(condition, **kwargs):
    queryset = audience_queryset(condition, now=NOW, base=Customer.objects.all(), **kwargs)
    with CaptureQueriesContext(connection) as queries:
        list(queryset.values_list("pk", flat=True))
    assert len(queries) == 1
    return queries[0]["sql"].upper()


def test_windowed_figures_are_set_based_never_a_subquery_per_customer(customers):
    both = {
        "all": [
            {"field": "customer.orders_count", "window": WINDOW, "op": "gte", "value": 3},
            {"field": "customer.total_spent", "window": WINDOW, "op": "gte", "value": 800},
        ]
    }
    sql = _sql(both)
    # ONE grouped scan of the window's orders for both figures, joined by customer id.
    assert sql.count("GROUP BY") == 1 and "HAVING" in sql
    assert '"CUSTOMERS_CUSTOMER"."ID" IN (SELECT' in sql
    assert '= ("CUSTOMERS_CUSTOMER"."ID")' not in sql  # not correlated
    # `eq 0` is an anti-join: NOT EXISTS over the window's orders.
    sql = _sql({"field": "customer.orders_count", "window": WINDOW, "op": "eq", "value": 0})
    assert "NOT (EXISTS(" in sql and "GROUP BY" not in sql
    # A threshold the empty figure meets is the complement of one grouped query.
    sql = _sql({"field": "customer.total_spent", "window": WINDOW, "op": "lt", "value": 50})
    assert 'NOT ("CUSTOMERS_CUSTOMER"."ID" IN (SELECT' in sql and "HAVING NOT" in sql
    # A chunk's id range restricts the grouped rows.
    sql = _sql(both, scope=Scope(low=10, high=20))
    assert 'U0."CUSTOMER_ID" >= 10' in sql and 'U0."CUSTOMER_ID" < 20' in sql


def test_per_event_reads_one_query_per_figure_and_a_batch_one_for_all(customers):
    condition = {
        "all": [
            {"field": "customer.orders_count", "window": WINDOW, "op": "gte", "value": 1},
            {"field": "customer.total_spent", "window": WINDOW, "op": "gte", "value": 1},
        ]
    }
    rows = list(Customer.objects.filter(pk__in=[customer.pk for customer in customers]).order_by("pk"))
    with CaptureQueriesContext(connection) as queries:
        condition_evaluate(condition, EvaluationContext(customer=rows[3], now=NOW))
    assert len(queries) == 2
    assert all('"CUSTOMER_ID" = ' in query["sql"].upper() for query in queries)
    contexts = [EvaluationContext(customer=row, now=NOW) for row in rows]
    with CaptureQueriesContext(connection) as queries:
        assert figures_prefetch(condition, contexts) == 2
        for context in contexts:
            condition_evaluate(condition, context)
    assert len(queries) == 2
