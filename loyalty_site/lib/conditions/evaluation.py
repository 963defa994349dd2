"""The in-memory evaluator: one condition against the objects of one event."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .catalog import FieldSpec, field_get
from .context import Evaluation, EvaluationContext
from .figures import figure_of, figures_of
from .operators import OPERATORS, WHERE
from .validation import condition_check, join

LIST_TYPES = ("tags", "list")


def figure_cache_key(spec: FieldSpec, window: dict | None) -> tuple[str, str, int | None]:
    """Where a context caches a figure (also filled for a whole batch by `figures_prefetch`)."""
    days = window.get("days") if isinstance(window, dict) else None
    return ("figure", spec.name, int(days) if days else None)


def read_field(spec: FieldSpec, context: EvaluationContext, window: dict | None = None) -> Any:
    figure = spec.figure_for(now=context.now, window=window)
    if figure is not None:
        customer_id = getattr(context.customer, "pk", None)
        if customer_id is None:
            return None if context.customer is None else figure.zero
        return context.cached(figure_cache_key(spec, window), lambda: figure_of(figure, customer_id))
    kwargs: dict[str, Any] = {}
    if spec.supports_window:
        kwargs["window"] = window
    if spec.key is not None:
        kwargs["key"] = spec.key
    return spec.read(context, **kwargs)


def _item_context(spec: FieldSpec, context: EvaluationContext, item: Any) -> EvaluationContext:
    if spec.item_scope == "tag":
        return dataclasses.replace(context, tag=item)
    assert spec.item_scope is not None  # (only list fields, which have an item scope, have items)
    return dataclasses.replace(context, **{spec.item_scope: item})


def _trace(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            return items
        return {"count": len(items)}
    return str(value)


class _Evaluator:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def node(self, node: dict, context: EvaluationContext, path: str) -> bool:
        if "all" in node:
            return all(
                self.node(child, context, f"{join(path, 'all')}[{index}]") for index, child in enumerate(node["all"])
            )
        if "any" in node:
            return any(
                self.node(child, context, f"{join(path, 'any')}[{index}]") for index, child in enumerate(node["any"])
            )
        if "not" in node:
            return not self.node(node["not"], context, join(path, "not"))
        return self.leaf(node, context, path)

    def leaf(self, node: dict, context: EvaluationContext, path: str) -> bool:
        spec = field_get(node["field"])
        operator = OPERATORS[node["op"]]
        value = read_field(spec, context, node.get("window"))
        key = path or node["field"]
        if key not in self.values:
            self.values[key] = _trace(value)
        if spec.type in LIST_TYPES:
            items = list(value or ())
            if operator.takes == WHERE:
                where, where_path = node["where"], join(path, "where")

                def matches(item: Any) -> bool:
                    return self.node(where, _item_context(spec, context, item), where_path)

                return operator.holds(spec.type, items, matches, now=context.now)
            return operator.holds(spec.type, items, node.get("value"), now=context.now)
        return operator.holds(spec.type, value, node.get("value"), now=context.now)


def _figure_leaves(node: Any) -> list[tuple[FieldSpec, dict | None]]:
    """The (field, window) of every leaf of a condition that reads a figure (quantifier items excluded)."""
    found: list[tuple[FieldSpec, dict | None]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, dict):
            continue
        if "all" in current or "any" in current:
            stack.extend(current.get("all") or current.get("any") or [])
        elif "not" in current:
            stack.append(current["not"])
        elif isinstance(current.get("field"), str):
            try:
                spec = field_get(current["field"])
            except KeyError:
                continue
            if spec.figure is not None:
                found.append((spec, current.get("window")))
    return found


def figures_prefetch(condition: dict | None, contexts: list[EvaluationContext]) -> int:
    """
    Fill the caches of many contexts (one batch of events, evaluated at the same `now`) with every figure
    `condition` reads: ONE grouped query per figure for the whole batch instead of one per event. Returns
    the number of queries made. Contexts already holding a figure keep it.
    """
    if not condition or not contexts:
        return 0
    queries = 0
    now = contexts[0].now
    for spec, window in _figure_leaves(condition):
        figure = spec.figure_for(now=now, window=window)
        if figure is None:
            continue
        key = figure_cache_key(spec, window)
        wanting: dict[int, list[EvaluationContext]] = {}
        for context in contexts:
            pk = getattr(context.customer, "pk", None)
            if pk is not None and context.now == now and key not in context.cache:
                wanting.setdefault(pk, []).append(context)
        if not wanting:
            continue
        values = figures_of(figure, list(wanting))
        queries += 1
        for pk, waiting in wanting.items():
            for context in waiting:
                context.cache[key] = values[pk]
    return queries


def condition_evaluate(condition: dict | None, context: EvaluationContext, *, path: str = "") -> Evaluation:
    """
    Evaluate a condition in memory. `None` (no condition) is true. A malformed condition raises
    ConditionInvalid (never a half-evaluated answer). The result carries the value read for each
    leaf, by JSON path, for run traces.
    """
    if condition is None:
        return Evaluation(result=True, values={})
    condition_check(condition, path=path)
    evaluator = _Evaluator()
    result = evaluator.node(condition, context, path)
    return Evaluation(result=result, values=evaluator.values)


Predicate = Callable[[EvaluationContext], bool]


def condition_predicate(condition: dict | None) -> Predicate:
    """
    A condition checked once and turned into a function of the context: the same answer as
    `condition_evaluate(condition, context).result` (the same reads and operators), without re-validating
    the JSON or tracing the values read on every call — for a condition kept and evaluated many times
    (a promotion's validation rule in the web process's promotion set). Raises ConditionInvalid like
    `condition_evaluate`.
    """
    if condition is None:
        return _always
    condition_check(condition, path="")
    return _predicate(condition)


def _always(context: EvaluationContext) -> bool:
    return True


def _predicate(node: dict) -> Predicate:
    if "all" in node:
        every = tuple(_predicate(child) for child in node["all"])
        return lambda context: all(part(context) for part in every)
    if "any" in node:
        some = tuple(_predicate(child) for child in node["any"])
        return lambda context: any(part(context) for part in some)
    if "not" in node:
        inner = _predicate(node["not"])
        return lambda context: not inner(context)
    spec = field_get(node["field"])
    operator = OPERATORS[node["op"]]
    window, target = node.get("window"), node.get("value")
    if spec.type in LIST_TYPES and operator.takes == WHERE:
        where = _predicate(node["where"])

        def quantified(context: EvaluationContext) -> bool:
            items = list(read_field(spec, context, window) or ())
            return operator.holds(
                spec.type, items, lambda item: where(_item_context(spec, context, item)), now=context.now
            )

        return quantified
    if spec.type in LIST_TYPES:
        return lambda context: operator.holds(
            spec.type, list(read_field(spec, context, window) or ()), target, now=context.now
        )
    return lambda context: operator.holds(spec.type, read_field(spec, context, window), target, now=context.now)
