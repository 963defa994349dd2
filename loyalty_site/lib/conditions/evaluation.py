"""The in-memory evaluator: one condition against the objects of one event."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from .catalog import QUANTIFIER_OPS, FieldSpec, field_get
from .context import Evaluation, EvaluationContext
from .operators import words_match
from .validation import condition_check, join
from .values import NUMERIC_TYPES, as_text, day_bounds, resolve_day, resolve_instant, to_decimal


def read_field(spec: FieldSpec, context: EvaluationContext, window: dict | None = None) -> Any:
    kwargs: dict[str, Any] = {}
    if spec.supports_window:
        kwargs["window"] = window
    if spec.key is not None:
        kwargs["key"] = spec.key
    return spec.read(context, **kwargs)


def is_set(spec: FieldSpec, value: Any) -> bool:
    if value is None:
        return False
    if spec.type in ("tags", "list"):
        return len(value) > 0
    if spec.type in ("text", "choice"):
        return as_text(value) != ""
    return True


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if op == "gt":
        return left > right
    if op == "gte":
        return left >= right
    if op == "lt":
        return left < right
    if op == "lte":
        return left <= right
    raise ValueError(op)


def compare(spec: FieldSpec, value: Any, op: str, target: Any, now: datetime) -> bool:
    """`value <op> target` for a scalar field value (not None)."""
    kind = spec.type
    if kind in ("text", "choice"):
        text = as_text(value).lower()
        if op in ("eq", "ne"):
            return (text == target.lower()) == (op == "eq")
        if op in ("in", "not_in"):
            return (text in {item.lower() for item in target}) == (op == "in")
        if op == "contains":
            return target.lower() in text
        if op == "not_contains":
            return target.lower() not in text
        if op == "contains_any":
            return any(item.lower() in text for item in target)
        if op == "contains_words_any":
            return words_match(text, target)
        if op == "starts_with":
            return text.startswith(target.lower())
        if op == "ends_with":
            return text.endswith(target.lower())
    elif kind in NUMERIC_TYPES:
        number = to_decimal(value)
        if number is None:
            return False
        if op in ("in", "not_in"):
            return (number in {to_decimal(item) for item in target}) == (op == "in")
        return _compare(number, op, to_decimal(target))
    elif kind == "boolean":
        return _compare(bool(value), op, target)
    elif kind == "date":
        day = value.date() if isinstance(value, datetime) else value
        return _compare(day, op, resolve_day(target, now=now))
    elif kind == "datetime":
        if not isinstance(value, datetime):
            return False
        instant = value if timezone.is_aware(value) else timezone.make_aware(value)
        if op in ("eq", "ne"):
            start, end = day_bounds(resolve_day(target, now=now))
            return (start <= instant < end) == (op == "eq")
        return _compare(instant, op, resolve_instant(target, now=now))
    raise ValueError(f'"{op}" on a {kind} field')


def _item_context(spec: FieldSpec, context: EvaluationContext, item: Any) -> EvaluationContext:
    if spec.item_scope == "tag":
        return dataclasses.replace(context, tag=item)
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
        op = node["op"]
        value = read_field(spec, context, node.get("window"))
        key = path or node["field"]
        if key not in self.values:
            self.values[key] = _trace(value)
        if op == "is_set":
            return is_set(spec, value)
        if op == "is_not_set":
            return not is_set(spec, value)
        if spec.type in ("tags", "list"):
            items = list(value or ())
            if op in QUANTIFIER_OPS:
                where = node["where"]
                where_path = join(path, "where")
                matches = (self.node(where, _item_context(spec, context, item), where_path) for item in items)
                if op == "any":
                    return any(matches)
                if op == "all":
                    return all(matches)
                return not any(matches)
            lowered = {as_text(item).lower() for item in items if item is not None}
            if op == "contains":
                return node["value"].lower() in lowered
            if op == "not_contains":
                return node["value"].lower() not in lowered
            if op == "contains_any":
                return any(item.lower() in lowered for item in node["value"])
            raise ValueError(f'"{op}" on a {spec.type} field')
        if value is None:
            return False
        return compare(spec, value, op, node.get("value"), context.now)


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
