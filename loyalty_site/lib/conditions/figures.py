"""
Per-customer figures over rows — "orders in the last 30 days", "spent in the last 30 days": ONE definition
(`Figure`: which rows, which customer column, which aggregate, the figure of a customer without rows) read
three ways, so they cannot drift apart:

- for one customer (one event): `figure_of(figure, customer_id)`, one indexed query;
- for a batch of customers (the engine's batches): `figures_of(figure, ids)`, ONE grouped query for all;
- for an audience (segments, bulk runs, time passes): `figure_compile`, set based — never a subquery per
  customer. A comparison the empty figure fails (`gte 3`, `gt 800`) is
  `id IN (SELECT customer_id … GROUP BY customer_id HAVING <cmp>)`; one it satisfies (`eq 0`, `lt 3`,
  `ne 5`) is the complement `NOT (id IN (SELECT customer_id … HAVING NOT <cmp>))`; and when only the empty
  figure can satisfy it (`eq 0` / `lt 1` on a count) it is `NOT EXISTS (rows of the customer)`, an anti-join.
  The comparison is the operator's own SQL meaning (`operators.OPERATORS`) applied to the aggregate; its
  in-memory meaning applied to `zero` decides which form applies. A `Scope` (a primary-key range, a chunk of
  a bulk run, or a list of ids) restricts the grouped rows, so a chunk aggregates only its own customers.

Apps declare a field's figure with `FieldSpec(figure=fn(now=..., window=..., key=...) -> Figure | None)`
(None: no figure for these arguments, e.g. no window: the field reads a summary column instead).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models import BooleanField, Exists, Expression, F, OuterRef, Q, QuerySet

from .operators import MATCH_ALL, MATCH_NONE, NOTHING, OPERATORS


@dataclass(frozen=True)
class Figure:
    """A per-customer aggregate: `value` (an aggregate expression) over `rows`, grouped by `customer`."""

    # Uncorrelated rows already restricted to the window and to what counts (not cancelled...).
    rows: QuerySet
    # The rows' customer id column, as a lookup path ("customer_id", "membership__customer_id").
    customer: str
    # An aggregate expression over the rows (Count("pk"), Sum(...)); never NULL over a non-empty group.
    value: Any
    # The figure of a customer without rows (0, Decimal("0")).
    zero: Any
    # "count": every non-empty group counts at least 1 (lets `eq 0` compile to an anti-join).
    kind: str = "sum"
    # Figures with the same `rows_key` aggregate the same rows: `all` of several of them is ONE
    # `GROUP BY … HAVING a AND b` (e.g. orders count and spend over the same 30 days). None: never merged.
    rows_key: Any = None


@dataclass(frozen=True)
class Scope:
    """Which customers an audience is computed for: ids in [low, high) and/or in `ids`."""

    low: int | None = None
    high: int | None = None
    ids: Collection[int] | None = None

    def restrict(self, rows: QuerySet, column: str) -> QuerySet:
        if self.low is not None:
            rows = rows.filter(**{f"{column}__gte": self.low})
        if self.high is not None:
            rows = rows.filter(**{f"{column}__lt": self.high})
        if self.ids is not None:
            rows = rows.filter(IdIn(column, self.ids))
        return rows


class IdIn(Expression):
    """
    `column IN ids` for a long list of ids: on PostgreSQL ONE array parameter (`column = ANY(%s)`), so 5,000
    ids are one value to adapt, send and plan instead of 5,000 placeholders (Django's `__in` builds and
    psycopg splits those: about 0.1 s a query at 5,000 ids); elsewhere a plain `IN (…)`. No ids: nothing.
    """

    conditional = True

    def __init__(self, column: str, ids: Collection[int]) -> None:
        super().__init__(output_field=BooleanField())
        self.column: Any = F(column)
        self.ids = [int(pk) for pk in ids]

    def get_source_expressions(self) -> list:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        if not self.ids:
            raise EmptyResultSet
        column, params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
            return f"{column} = ANY(%s)", (*params, self.ids)
        return f"{column} IN ({', '.join(['%s'] * len(self.ids))})", (*params, *self.ids)


def figure_of(figure: Figure, customer_id: int) -> Any:
    """The figure of one customer: one query on the (customer, …) index."""
    value = figure.rows.filter(**{figure.customer: customer_id}).aggregate(figure=figure.value)["figure"]
    return figure.zero if value is None else value


def figures_of(figure: Figure, customer_ids: Collection[int]) -> dict[int, Any]:
    """The figures of many customers in ONE grouped query (customers without rows get `zero`)."""
    ids = list(customer_ids)
    found = dict(
        figure.rows.filter(**{f"{figure.customer}__in": ids})
        .order_by()
        .values(figure.customer)
        .annotate(figure=figure.value)
        .values_list(figure.customer, "figure")
    )
    return {pk: (figure.zero if found.get(pk) is None else found[pk]) for pk in ids}


def _grouped(figure: Figure, having: Q, scope: Scope | None) -> QuerySet:
    rows = scope.restrict(figure.rows, figure.customer) if scope is not None else figure.rows
    return rows.order_by().values(figure.customer).annotate(figure=figure.value).filter(having).values(figure.customer)


def _only_zero_matches(figure: Figure, op: str, target: Any) -> bool:
    """True when no count of 1 or more satisfies `op target` (so only customers without rows match)."""
    if figure.kind != "count":
        return False
    try:
        if op == "eq":
            return int(target) < 1
        if op == "lt":
            return int(target) <= 1
        if op == "lte":
            return int(target) < 1
        if op == "in":
            return all(int(item) < 1 for item in target)
    except (TypeError, ValueError):
        return False
    return False


@dataclass(frozen=True)
class FigureLeaf:
    """One comparison of a figure in a condition: `<figure> <op> <target>`."""

    figure: Figure
    field_type: str
    op: str
    target: Any

    def zero_matches(self, now: datetime) -> bool:
        return OPERATORS[self.op].holds(self.field_type, self.figure.zero, self.target, now=now)

    def having(self, now: datetime) -> Q:
        return OPERATORS[self.op].compile(self.field_type, self.figure.value, self.target, now=now)


def figures_compile_all(leaves: list[FigureLeaf], *, now: datetime, scope: Scope | None = None) -> Q | None:
    """
    `all` of several comparisons of figures over the same rows (equal `rows_key`) as ONE grouped query, when
    one of them fails for a customer without rows (so every match has rows): `id IN (SELECT customer_id …
    GROUP BY customer_id HAVING a AND b)`. None when they cannot merge (the caller compiles them one by one).
    """
    if len(leaves) < 2 or any(OPERATORS[leaf.op].takes == NOTHING for leaf in leaves):
        return None
    if all(leaf.zero_matches(now) for leaf in leaves):
        return None
    having = leaves[0].having(now)
    for leaf in leaves[1:]:
        having &= leaf.having(now)
    return Q(pk__in=_grouped(leaves[0].figure, having, scope))


def figure_compile(
    figure: Figure, field_type: str, op: str, target: Any, *, now: datetime, scope: Scope | None = None
) -> Q:
    """`<figure> <op> <target>` over Customer rows, set based (see the module docstring)."""
    operator = OPERATORS[op]
    if operator.takes == NOTHING:
        # A figure is always set (a customer without rows has `zero`).
        return MATCH_ALL if operator.holds(field_type, figure.zero, target, now=now) else MATCH_NONE
    # (no NULL guard: a figure over a non-empty group is never NULL)
    compared = operator.compile(field_type, figure.value, target, now=now)
    if not operator.holds(field_type, figure.zero, target, now=now):
        return Q(pk__in=_grouped(figure, compared, scope))
    if _only_zero_matches(figure, op, target):
        rows = scope.restrict(figure.rows, figure.customer) if scope is not None else figure.rows
        return ~Q(Exists(rows.filter(**{figure.customer: OuterRef("pk")})))
    return ~Q(pk__in=_grouped(figure, ~compared, scope))
