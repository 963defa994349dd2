"""
Property test: for random customer-scoped conditions and random data, the in-memory evaluator and
the SQL compiler select exactly the same customers (run it on SQLite and on PostgreSQL). Orders are in
several currencies with rates that change over time (or sent with the order), so the money figures
(`customer.total_spent` with and without a window, `customer.refunded_total`) are shop-currency sums.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.customers import services
from apps.customers.currency import exchange_rate_set
from apps.customers.models import Customer, Product
from apps.customers.services import LineInput
from apps.tagging.services import product_tags_set, tags_add
from loyalty_site.lib.conditions import (
    EvaluationContext,
    Scope,
    audience_queryset,
    condition_evaluate,
    condition_predicate,
    condition_validate,
    figures_prefetch,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)

# ASCII only: SQLite folds case for ASCII letters only (documented limitation). '%' and '_' check
# that LIKE wildcards are escaped; apostrophes and hyphens exercise whole-word matching.
WORDS = ["ana", "Her", "HERMES", "mother's", "for her", "50%", "a_b", "vip", "x", "-", ""]
TEXTS = st.sampled_from([*WORDS, "Ana Maria", "Gift for her!", "Mother's day", "50% off", "a_b_c", "Vip-Gold"])
NEEDLES = st.sampled_from([*WORDS, "an", "ER", "%", "_", "ay", "OFF"])
FILLED_NEEDLES = NEEDLES.filter(lambda needle: needle.strip())
COUNTRIES = ["VN", "FR", "us", ""]
TAGS = ["VIP", "vip-gold", "Staff", "Her", "Kids & Baby", "50%"]
CURRENCIES = ["USD", "EUR", "VND"]
WINDOWS = st.sampled_from([None, {"days": 1}, {"days": 7}, {"days": 30}, {"days": 45}])
MONEY = st.integers(min_value=0, max_value=4000).map(lambda quarters: Decimal(quarters) / 4)
DAYS_AGO = st.sampled_from([0, 1, 7, 29, 30, 31, 45, 60, 400])
SECONDS = st.sampled_from([-1, 0, 1, 3600])


# --- Data ----------------------------------------------------------------------------------------------

order_strategy = st.fixed_dictionaries(
    {
        "total": MONEY,
        "days": DAYS_AGO,
        "seconds": SECONDS,
        "currency": st.sampled_from(CURRENCIES),
        "fate": st.sampled_from(["kept", "kept", "cancelled", "refunded_part", "refunded_all"]),
        "product": st.sampled_from([None, 0, 1, 2]),
        # None: the table's rate of the order's day; else the integrator sends the rate with the order.
        "exchange_rate": st.sampled_from([None, None, "1.5", "0.0001"]),
    }
)
customer_strategy = st.fixed_dictionaries(
    {
        "email": TEXTS,
        "first_name": TEXTS,
        "country": st.sampled_from(COUNTRIES),
        "state": st.sampled_from(["guest", "invited", "registered", "disabled"]),
        "accepts_marketing": st.booleans(),
        "birthday": st.one_of(st.none(), st.dates(min_value=date(1960, 1, 1), max_value=date(2026, 7, 1))),
        "zone": st.one_of(st.none(), TEXTS),
        "created_days": DAYS_AGO,
        "tags": st.lists(st.sampled_from(TAGS), max_size=3, unique=True),
        "orders": st.lists(order_strategy, max_size=4),
    }
)


PRODUCT_TAGS = [["Kids & Baby"], ["Toys", "VIP"], []]


def rates_build() -> None:
    """Rates against the shop currency (USD) that change inside the windows, so shop amounts differ from totals."""
    for currency, day, rate in (
        ("EUR", date(2025, 1, 1), "1.08"),
        ("EUR", date(2026, 6, 1), "1.1234"),  # orders of the last 14 days use this one
        ("VND", date(2025, 1, 1), "0.0000393"),
    ):
        exchange_rate_set(currency=currency, day=day, rate=rate)


def products_build() -> list[Product]:
    products = []
    for index, names in enumerate(PRODUCT_TAGS):
        product = Product.objects.create(title=f"Product {index}")
        product_tags_set(product=product, names=names)
        products.append(product)
    return products


def customer_build(spec: dict, products: list[Product]) -> Customer:
    attributes = {} if spec["zone"] is None else {"zone": spec["zone"]}
    customer = Customer.objects.create(
        email=spec["email"],
        first_name=spec["first_name"],
        country=spec["country"],
        state=spec["state"],
        accepts_marketing=spec["accepts_marketing"],
        birthday=spec["birthday"],
        attributes=attributes,
        created_at=NOW - timedelta(days=spec["created_days"]),
    )
    if spec["tags"]:
        tags_add(customer=customer, names=spec["tags"])
    for order_spec in spec["orders"]:
        order, _ = services.order_create(
            customer=customer,
            currency=order_spec["currency"],
            lines=[
                LineInput(
                    title="Item",
                    quantity=1,
                    unit_price=order_spec["total"],
                    product=None if order_spec["product"] is None else products[order_spec["product"]],
                )
            ],
            placed_at=NOW - timedelta(days=order_spec["days"], seconds=order_spec["seconds"]),
            exchange_rate=order_spec["exchange_rate"] if order_spec["currency"] != "USD" else None,
        )
        fate = order_spec["fate"]
        if fate == "cancelled":
            services.order_cancel(order=order)
        elif fate.startswith("refunded") and order.total > 0:
            amount = order.total if fate == "refunded_all" else (order.total / 2).quantize(Decimal("0.01"))
            if amount > 0:
                services.refund_create(order=order, amount=amount)
    return customer


# --- Conditions ----------------------------------------------------------------------------------------


def _leaf(field, op, value=None, **extra):
    node = {"field": field, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node


def text_leaves(field: str):
    return st.one_of(
        st.builds(_leaf, st.just(field), st.sampled_from(["eq", "ne", "contains", "not_contains"]), NEEDLES),
        st.builds(_leaf, st.just(field), st.sampled_from(["starts_with", "ends_with"]), NEEDLES),
        st.builds(
            _leaf,
            st.just(field),
            st.sampled_from(["in", "not_in", "contains_any"]),
            st.lists(FILLED_NEEDLES, min_size=1, max_size=3),
        ),
        st.builds(
            _leaf,
            st.just(field),
            st.just("contains_words_any"),
            st.lists(
                st.sampled_from(["her", "ana", "mother", "vip", "gift", "50", "a_b", "for her"]), min_size=1, max_size=3
            ),
        ),
        st.builds(_leaf, st.just(field), st.sampled_from(["is_set", "is_not_set"])),
    )


def number_leaves(field: str, values, *, window: bool):
    windows = WINDOWS if window else st.just(None)

    def build(op, value, window_value):
        extra = {"window": window_value} if window_value else {}
        return _leaf(field, op, value, **extra)

    return st.one_of(
        st.builds(build, st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), values, windows),
        st.builds(build, st.sampled_from(["in", "not_in"]), st.lists(values, min_size=1, max_size=3), windows),
        st.builds(build, st.sampled_from(["is_set", "is_not_set"]), st.none(), windows),
    )


DATE_VALUES = st.one_of(
    st.builds(lambda days: {"days_ago": days}, DAYS_AGO),
    st.builds(lambda days: {"days_from_now": days}, st.sampled_from([0, 1, 30])),
    st.builds(lambda days: (NOW - timedelta(days=days)).date().isoformat(), DAYS_AGO),
    st.builds(lambda days, seconds: (NOW - timedelta(days=days, seconds=seconds)).isoformat(), DAYS_AGO, SECONDS),
)


def date_leaves(field: str, values):
    return st.one_of(
        st.builds(_leaf, st.just(field), st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), values),
        st.builds(_leaf, st.just(field), st.sampled_from(["is_set", "is_not_set"])),
    )


def tag_leaves(field: str, names):
    where = text_leaves("tag.name")
    return st.one_of(
        st.builds(_leaf, st.just(field), st.sampled_from(["contains", "not_contains"]), names),
        st.builds(_leaf, st.just(field), st.just("contains_any"), st.lists(names, min_size=1, max_size=3)),
        st.builds(_leaf, st.just(field), st.sampled_from(["is_set", "is_not_set"])),
        st.builds(
            lambda op, condition: _leaf(field, op, where=condition), st.sampled_from(["any", "all", "none"]), where
        ),
        st.builds(
            lambda op, a, b: _leaf(field, op, where={"any": [a, {"not": b}]}),
            st.sampled_from(["any", "all", "none"]),
            where,
            where,
        ),
    )


LEAVES = st.one_of(
    text_leaves("customer.email"),
    text_leaves("customer.first_name"),
    text_leaves("customer.country"),
    text_leaves("customer.attributes.zone"),
    st.builds(_leaf, st.just("customer.state"), st.sampled_from(["eq", "ne"]), st.sampled_from(["guest", "disabled"])),
    st.builds(_leaf, st.just("customer.accepts_marketing"), st.sampled_from(["eq", "ne"]), st.booleans()),
    number_leaves("customer.total_spent", MONEY, window=True),
    number_leaves("customer.refunded_total", MONEY, window=False),
    number_leaves("customer.orders_count", st.integers(0, 5), window=True),
    number_leaves("customer.days_since_last_order", st.sampled_from([0, 1, 7, 29, 30, 31, 60]), window=False),
    date_leaves("customer.last_order_at", DATE_VALUES),
    date_leaves("customer.first_order_at", DATE_VALUES),
    date_leaves("customer.created_at", DATE_VALUES),
    date_leaves(
        "customer.birthday",
        st.one_of(st.dates(min_value=date(1960, 1, 1), max_value=date(2026, 7, 1)).map(date.isoformat), DATE_VALUES),
    ),
    tag_leaves("customer.tags", st.sampled_from([*TAGS, "vip", "STAFF", "none"])),
    tag_leaves("customer.product_tags", st.sampled_from(["kids & baby", "TOYS", "vip", "Staff"])),
    tag_leaves("customer.currencies", st.sampled_from([*CURRENCIES, "usd", "GBP"])),
)


def _windowed_pair(count_op, count, spend_op, spend, days):
    window = {"days": days}
    return {
        "all": [
            _leaf("customer.orders_count", count_op, count, window=window),
            _leaf("customer.total_spent", spend_op, spend, window=window),
        ]
    }


ORDERED_OPS = st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])
# Figures over the same rows in one "all" compile to ONE GROUP BY … HAVING (merged): cover it on purpose.
WINDOWED_PAIRS = st.builds(
    _windowed_pair, ORDERED_OPS, st.integers(0, 3), ORDERED_OPS, MONEY, st.sampled_from([7, 30, 45])
)

CONDITIONS = st.recursive(
    st.one_of(LEAVES, WINDOWED_PAIRS),
    lambda children: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(children, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(children, max_size=3)),
        st.builds(lambda item: {"not": item}, children),
    ),
    max_leaves=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    customers=st.lists(customer_strategy, min_size=1, max_size=4),
    conditions=st.lists(CONDITIONS, min_size=4, max_size=8),
)
def test_in_memory_and_sql_evaluators_select_the_same_customers(settings, customers, conditions):
    # A zone with DST and an offset, so "eq a day" means a local calendar day, not a UTC one.
    settings.TIME_ZONE = "America/New_York"
    # One data set per example, rolled back afterwards; several conditions are checked against it.
    with transaction.atomic():
        rates_build()
        products = products_build()
        ids = [customer_build(spec, products).pk for spec in customers]
        rows = list(Customer.objects.filter(pk__in=ids).order_by("pk"))
        for condition in conditions:
            assert condition_validate(condition, scopes=("customer",), audience=True) == [], condition
            in_memory = {
                customer.pk
                for customer in rows
                if condition_evaluate(condition, EvaluationContext(customer=customer, now=NOW)).result
            }
            in_sql = set(
                audience_queryset(condition, now=NOW, base=Customer.objects.filter(pk__in=ids)).values_list(
                    "pk", flat=True
                )
            )
            assert in_memory == in_sql, condition
            # The same condition turned into a predicate once (what the promotion set keeps) agrees.
            predicate = condition_predicate(condition)
            assert {customer.pk for customer in rows if predicate(EvaluationContext(customer=customer, now=NOW))} == (
                in_memory
            ), condition
            # A bulk chunk: figures aggregate only the scope's rows (an id range), or a list of candidates.
            chunk = Scope(low=min(ids), high=max(ids) + 1)
            in_chunk = set(
                audience_queryset(condition, now=NOW, base=Customer.objects.all(), scope=chunk).values_list(
                    "pk", flat=True
                )
            )
            assert in_memory == in_chunk, condition
            candidates = Scope(ids=ids[::2])
            in_candidates = set(
                audience_queryset(condition, now=NOW, base=Customer.objects.all(), scope=candidates).values_list(
                    "pk", flat=True
                )
            )
            assert in_memory & set(ids[::2]) == in_candidates, condition
            # A batch of events: every figure read once for all customers gives the same answers.
            contexts = [EvaluationContext(customer=customer, now=NOW) for customer in rows]
            figures_prefetch(condition, contexts)
            in_batch = {context.customer.pk for context in contexts if condition_evaluate(condition, context).result}
            assert in_memory == in_batch, condition
        transaction.set_rollback(True)
