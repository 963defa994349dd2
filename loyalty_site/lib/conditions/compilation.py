"""
The SQL evaluator: a condition compiled to a `Q` over Customer rows, for audiences and segments.

Every compiled leaf is two-valued (never SQL NULL): a field that is not set makes every comparison
false, exactly like the in-memory evaluator, so `not` and `any` agree between the two. Customer
figures compile to the summary columns (indexed) or to correlated subqueries on indexed columns;
tag-like lists compile to `EXISTS`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Exists, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    In,
    IRegex,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
)

from .catalog import QUANTIFIER_OPS, FieldSpec, field_get
from .operators import words_pattern
from .validation import condition_check, join
from .values import NUMERIC_TYPES, day_bounds, resolve_day, resolve_instant, to_decimal

COMPARE = {
    "eq": Exact,
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}


MATCH_ALL = Q(pk__isnull=False)
MATCH_NONE = Q(pk__in=[])


class ConditionNotCompilable(ValueError):
    """The condition uses a field that has no SQL form (e.g. `order.total` in an audience)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def _any(parts: list[Q]) -> Q:
    return reduce(or_, parts)


def _never_null(expr: Any) -> bool:
    # COALESCE(subquery, <constant>) cannot be NULL: skip the guard so the subquery runs once.
    if isinstance(expr, Coalesce):
        last = expr.get_source_expressions()[-1]
        return isinstance(last, Value) and last.value is not None
    return False


def _present(expr: Any) -> Q:
    return MATCH_ALL if _never_null(expr) else Q(IsNull(expr, False))


def compile_is_set(expr: Any, kind: str) -> Q:
    present = _present(expr)
    if kind in ("text", "choice"):
        return present & ~Q(Exact(expr, ""))
    return present


# Money has two decimals (validation refuses more). SQLite keeps decimals as binary floats, so sums
# and running totals carry noise well below half a cent: comparing against the half-cent band around
# the value gives the exact decimal answer on SQLite and PostgreSQL alike, and stays index-friendly.
HALF_CENT = Decimal("0.005")


def _money_eq(expr: Any, amount: Decimal) -> Q:
    return Q(GreaterThanOrEqual(expr, amount - HALF_CENT)) & Q(LessThan(expr, amount + HALF_CENT))


def _money(expr: Any, op: str, value: Any) -> Q:
    if op in ("in", "not_in"):
        matched = _any([_money_eq(expr, to_decimal(item)) for item in value])
        return matched if op == "in" else ~matched
    amount = to_decimal(value)
    if op == "eq":
        return _money_eq(expr, amount)
    if op == "ne":
        return ~_money_eq(expr, amount)
    if op == "gt":
        return Q(GreaterThanOrEqual(expr, amount + HALF_CENT))
    if op == "gte":
        return Q(GreaterThanOrEqual(expr, amount - HALF_CENT))
    if op == "lt":
        return Q(LessThan(expr, amount - HALF_CENT))
    return Q(LessThan(expr, amount + HALF_CENT))  # lte


def compile_comparison(expr: Any, kind: str, op: str, value: Any, *, now: datetime) -> Q:
    """`expr <op> value` as a two-valued Q (false when expr is NULL)."""
    if op == "is_set":
        return compile_is_set(expr, kind)
    if op == "is_not_set":
        return ~compile_is_set(expr, kind)
    present = _present(expr)
    if present is MATCH_ALL:
        present = Q()
    if kind in ("text", "choice"):
        if op == "eq":
            return present & Q(IExact(expr, value))
        if op == "ne":
            return present & ~Q(IExact(expr, value))
        if op == "in":
            return present & _any([Q(IExact(expr, item)) for item in value])
        if op == "not_in":
            return present & ~_any([Q(IExact(expr, item)) for item in value])
        if op == "contains":
            return present & Q(IContains(expr, value))
        if op == "not_contains":
            return present & ~Q(IContains(expr, value))
        if op == "contains_any":
            return present & _any([Q(IContains(expr, item)) for item in value])
        if op == "contains_words_any":
            return present & Q(IRegex(expr, words_pattern(value)))
        if op == "starts_with":
            return present & Q(IStartsWith(expr, value))
        if op == "ends_with":
            return present & Q(IEndsWith(expr, value))
    elif kind == "money":
        return present & _money(expr, op, value)
    elif kind in NUMERIC_TYPES:
        if op in ("in", "not_in"):
            matched = Q(In(expr, [to_decimal(item) for item in value]))
            return present & (matched if op == "in" else ~matched)
        number = to_decimal(value)
        if kind == "integer":
            number = int(number)
        if op == "ne":
            return present & ~Q(Exact(expr, number))
        return present & Q(COMPARE[op](expr, number))
    elif kind == "boolean":
        if op == "ne":
            return present & ~Q(Exact(expr, value))
        return present & Q(Exact(expr, value))
    elif kind == "date":
        day = resolve_day(value, now=now)
        if op == "ne":
            return present & ~Q(Exact(expr, day))
        return present & Q(COMPARE[op](expr, day))
    elif kind == "datetime":
        if op in ("eq", "ne"):
            start, end = day_bounds(resolve_day(value, now=now))
            within = Q(GreaterThanOrEqual(expr, start)) & Q(LessThan(expr, end))
            return present & (within if op == "eq" else ~within)
        return present & Q(COMPARE[op](expr, resolve_instant(value, now=now)))
    raise ValueError(f'"{op}" on a {kind} field')


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def node(self, node: dict, path: str, item: Any = None, item_scope: str | None = None) -> Q:
        if "all" in node:
            parts = [
                self.node(child, f"{join(path, 'all')}[{index}]", item, item_scope)
                for index, child in enumerate(node["all"])
            ]
            # An empty "all" is true; Q() alone would vanish when combined with "|".
            return reduce(lambda left, right: left & right, parts) if parts else MATCH_ALL
        if "any" in node:
            parts = [
                self.node(child, f"{join(path, 'any')}[{index}]", item, item_scope)
                for index, child in enumerate(node["any"])
            ]
            # An empty "any" is false; Q() alone would match everything.
            return _any(parts) if parts else MATCH_NONE
        if "not" in node:
            return ~self.node(node["not"], join(path, "not"), item, item_scope)
        return self.leaf(node, path, item, item_scope)

    def leaf(self, node: dict, path: str, item: Any, item_scope: str | None) -> Q:
        spec = field_get(node["field"])
        op = node["op"]
        if item_scope is not None and spec.scope != item_scope:
            raise ConditionNotCompilable(
                join(path, "field"), f'"{spec.name}" cannot be used inside a quantifier in an audience'
            )
        if not spec.compilable:
            raise ConditionNotCompilable(join(path, "field"), f'"{spec.name}" cannot be used in an audience')
        if spec.type == "tags" and spec.items is not None and item_scope is None:
            return self.tags(spec, node, path)
        kwargs: dict[str, Any] = {"now": self.now, "op": op, "value": node.get("value"), "item": item}
        if spec.supports_window:
            kwargs["window"] = node.get("window")
        if spec.key is not None:
            kwargs["key"] = spec.key
        compiled = spec.compile(**kwargs)
        if isinstance(compiled, Q):
            return compiled
        return compile_comparison(compiled, spec.type, op, node.get("value"), now=self.now)

    def tags(self, spec: FieldSpec, node: dict, path: str) -> Q:
        rows, item = spec.items(now=self.now)
        op = node["op"]
        if op == "is_set":
            return Q(Exists(rows))
        if op == "is_not_set":
            return ~Q(Exists(rows))
        if op in ("contains", "not_contains"):
            found = Q(Exists(rows.filter(Q(IExact(item, node["value"])))))
            return found if op == "contains" else ~found
        if op == "contains_any":
            return Q(Exists(rows.filter(_any([Q(IExact(item, value)) for value in node["value"]]))))
        if op in QUANTIFIER_OPS:
            where = self.node(node["where"], join(path, "where"), item, spec.item_scope)
            if op == "any":
                return Q(Exists(rows.filter(where)))
            if op == "all":
                return ~Q(Exists(rows.filter(~where)))
            return ~Q(Exists(rows.filter(where)))
        raise ValueError(f'"{op}" on a tags field')


def condition_compile(condition: dict | None, *, now: datetime, path: str = "") -> Q:
    """
    A condition as a `Q` over Customer rows (`Customer.objects.filter(...)`). Raises ConditionInvalid when it is
    malformed and ConditionNotCompilable when a field has no SQL form. `None` matches every customer.
    """
    if condition is None:
        return Q()
    condition_check(condition, path=path)
    return _Compiler(now).node(condition, path)


def audience_queryset(condition: dict | None, *, now: datetime, base: QuerySet) -> QuerySet:
    """
    The rows of `base` (a Customer queryset handed in by the caller: this library knows no model)
    that match `condition` at `now`; all of them when the condition is None.
    """
    return base.filter(condition_compile(condition, now=now))
