"""
The SQL evaluator: a condition compiled to a `Q` over Customer rows, for audiences and segments.

Every compiled leaf is two-valued (never SQL NULL): a field that is not set makes every comparison
false, exactly like the in-memory evaluator, so `not` and `any` agree between the two. Customer
figures compile to the summary columns (indexed); figures over rows (windowed counts and sums) compile
set based, one `GROUP BY … HAVING` or anti-join for all customers (`figures`), restricted to the
caller's `Scope` (a bulk chunk's id range); tag-like lists compile to `EXISTS`.
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q, QuerySet

from .catalog import FieldSpec, field_get
from .figures import FigureLeaf, Scope, figure_compile, figures_compile_all
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
    def __init__(self, now: datetime, scope: Scope | None = None) -> None:
        self.now = now
        self.scope = scope

    def node(self, node: dict, path: str, item: Any = None, item_scope: str | None = None) -> Q:
        if "all" in node:
            children = list(enumerate(node["all"]))
            parts = self.merged_figures(children, item_scope)
            parts += [self.node(child, f"{join(path, 'all')}[{index}]", item, item_scope) for index, child in children]
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

    def merged_figures(self, children: list[tuple[int, Any]], item_scope: str | None) -> list[Q]:
        """
        Comparisons of figures over the same rows in one `all` (orders count AND spend in the last 30 days)
        become ONE grouped query; they are removed from `children`. Malformed leaves are left to `leaf`.
        """
        if item_scope is not None:
            return []
        by_rows: dict[Any, list[tuple[int, FigureLeaf]]] = {}
        for position, (_, child) in enumerate(children):
            if not (isinstance(child, dict) and isinstance(child.get("field"), str) and "op" in child):
                continue
            try:
                spec = field_get(child["field"])
            except KeyError:
                continue
            figure = spec.figure_for(now=self.now, window=child.get("window"))
            if figure is not None and figure.rows_key is not None:
                leaf = FigureLeaf(figure, spec.type, child["op"], child.get("value"))
                by_rows.setdefault(figure.rows_key, []).append((position, leaf))
        merged: list[Q] = []
        taken: set[int] = set()
        for group in by_rows.values():
            compiled = figures_compile_all([leaf for _, leaf in group], now=self.now, scope=self.scope)
            if compiled is not None:
                merged.append(compiled)
                taken.update(position for position, _ in group)
        children[:] = [child for position, child in enumerate(children) if position not in taken]
        return merged

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
        figure = spec.figure_for(now=self.now, window=node.get("window")) if item_scope is None else None
        if figure is not None:
            return figure_compile(figure, spec.type, op, node.get("value"), now=self.now, scope=self.scope)
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


def condition_compile(condition: dict | None, *, now: datetime, path: str = "", scope: Scope | None = None) -> Q:
    """
    A condition as a `Q` over Customer rows (`Customer.objects.filter(...)`). Raises ConditionInvalid when it is
    malformed and ConditionNotCompilable when a field has no SQL form. `None` matches every customer.

    `scope` (`Scope(low=, high=)` and/or `Scope(ids=[...])`) says which customers the caller will filter the
    Q with: figures over rows then aggregate only those customers' rows. The Q is only correct for
    customers inside the scope; the caller filters its base queryset to the same customers.
    """
    if condition is None:
        return Q()
    condition_check(condition, path=path)
    return _Compiler(now, scope).node(condition, path)


def audience_queryset(condition: dict | None, *, now: datetime, base: QuerySet, scope: Scope | None = None) -> QuerySet:
    """
    The rows of `base` (a Customer queryset handed in by the caller: this library knows no model)
    that match `condition` at `now`; all of them when the condition is None. With a `scope`, `base` is
    restricted to it as well (ids in the range / the list), so the result is always exact.
    """
    if scope is not None:
        base = scope.restrict(base, "pk")
    return base.filter(condition_compile(condition, now=now, scope=scope))
