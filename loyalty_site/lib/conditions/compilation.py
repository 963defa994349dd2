"""
The SQL evaluator: a condition compiled to a `Q` over Customer rows, for audiences and segments.

Every compiled leaf is two-valued (never SQL NULL): a field that is not set makes every comparison
false, exactly like the in-memory evaluator, so `not` and `any` agree between the two. Customer
figures compile to the summary columns (indexed) or to correlated subqueries on indexed columns;
tag-like lists compile to `EXISTS`.
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q, QuerySet

from .catalog import FieldSpec, field_get
from .operators import MATCH_ALL, MATCH_NONE, NOTHING, OPERATORS, WHERE, sql_present
from .validation import condition_check, join


class ConditionNotCompilable(ValueError):
    """The condition uses a field that has no SQL form (e.g. `order.total` in an audience)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def _any(parts: list[Q]) -> Q:
    return reduce(or_, parts)


def compile_comparison(expr: Any, field_type: str, op: str, value: Any, *, now: datetime) -> Q:
    """`expr <op> value` as a two-valued Q: false when `expr` is NULL (except for is_set / is_not_set)."""
    operator = OPERATORS[op]
    compiled = operator.compile(field_type, expr, value, now=now)
    if operator.takes == NOTHING:
        return compiled
    present = sql_present(expr)
    return compiled if present is MATCH_ALL else present & compiled


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
        if spec.compile is None:  # (a tag list inside a quantifier: only `tags` compiles it)
            raise ConditionNotCompilable(join(path, "field"), f'"{spec.name}" cannot be used in an audience')
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
        assert spec.items is not None  # (leaf() only sends tag fields with items here)
        rows, item = spec.items(now=self.now)
        operator = OPERATORS[node["op"]]
        if operator.takes == WHERE:
            where = self.node(node["where"], join(path, "where"), item, spec.item_scope)
            return operator.compile(spec.type, (rows, item), where, now=self.now)
        return operator.compile(spec.type, (rows, item), node.get("value"), now=self.now)


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
