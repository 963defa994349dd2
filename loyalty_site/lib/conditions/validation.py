"""Validation of condition JSON against the catalog: every error, each with its JSON path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .catalog import FieldSpec, field_get, scopes_all
from .context import ConditionError, ConditionInvalid
from .operators import NOTHING, OPERATORS, VALUES, WHERE
from .values import NUMERIC_TYPES, date_error, number_error

MAX_DEPTH = 10
MAX_NODES = 200
MAX_LIST_VALUES = 500
MAX_WINDOW_DAYS = 3650
WINDOW_UNIT_PER_DAY = {"days": 1, "hours": 24, "minutes": 24 * 60}
MAX_TEXT = 1000

GROUP_KEYS = ("all", "any", "not")
LEAF_KEYS = {"field", "op", "value", "window", "where"}


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Validator:
    def __init__(self, *, audience: bool) -> None:
        self.errors: list[ConditionError] = []
        self.nodes = 0
        self.audience = audience
        self.too_big = False

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConditionError(path=path, message=message))

    def node(self, node: Any, path: str, scopes: frozenset[str], depth: int, item_scope: str | None = None) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if not self.too_big:
                self.too_big = True
                self.error(path, f"the condition has more than {MAX_NODES} nodes")
            return
        if depth > MAX_DEPTH:
            self.error(path, f"the condition is nested deeper than {MAX_DEPTH} levels")
            return
        if not isinstance(node, dict):
            self.error(path, "a condition must be an object")
            return
        groups = [key for key in GROUP_KEYS if key in node]
        if groups:
            if len(node) != 1:
                extra = sorted(set(node) - {groups[0]})
                self.error(path, f'"{groups[0]}" cannot be combined with {", ".join(map(repr, extra))}')
                return
            key = groups[0]
            child = node[key]
            if key == "not":
                self.node(child, join(path, "not"), scopes, depth + 1, item_scope)
                return
            if not isinstance(child, list):
                self.error(join(path, key), f'"{key}" takes a list of conditions')
                return
            for index, item in enumerate(child):
                if self.too_big:
                    break  # reported once; the rest is not walked
                self.node(item, f"{join(path, key)}[{index}]", scopes, depth + 1, item_scope)
            return
        self.leaf(node, path, scopes, depth, item_scope)

    def leaf(self, node: dict, path: str, scopes: frozenset[str], depth: int, item_scope: str | None) -> None:
        unknown = sorted(set(node) - LEAF_KEYS)
        for key in unknown:
            self.error(join(path, key), f'unknown key "{key}"')
        name = node.get("field")
        if not isinstance(name, str) or not name:
            self.error(join(path, "field"), "a field name is required")
            return
        try:
            spec = field_get(name)
        except KeyError:
            self.error(join(path, "field"), f'unknown field "{name}"')
            return
        if spec.scope not in scopes:
            self.error(join(path, "field"), f'"{name}" is not available here (it needs a {spec.scope})')
            return
        if self.audience and not spec.compilable:
            self.error(join(path, "field"), f'"{name}" cannot be used in an audience')
        elif self.audience and item_scope is not None and spec.scope != item_scope:
            # In SQL the quantifier's subquery sees its item rows only.
            self.error(join(path, "field"), f'"{name}" cannot be used inside a quantifier in an audience')
        op = node.get("op")
        if not isinstance(op, str) or not op:
            self.error(join(path, "op"), "an operator is required")
            return
        if op not in OPERATORS:
            self.error(
                join(path, "op"),
                f'"{op[:50]}" is not an operator; a {spec.type} field takes {", ".join(spec.operators)}',
            )
            return
        if op not in spec.operators:
            self.error(join(path, "op"), f'"{op}" is not allowed for a {spec.type} field')
            return
        self.window(node, path, spec)
        if OPERATORS[op].takes == WHERE:
            if "value" in node:
                self.error(join(path, "value"), f'"{op}" takes "where", not "value"')
            if "where" not in node:
                self.error(join(path, "where"), f'"{op}" needs a "where" condition over each item')
                return
            assert spec.item_scope is not None  # ("where" operators exist only on lists, which have an item scope)
            self.node(node["where"], join(path, "where"), scopes | {spec.item_scope}, depth + 1, spec.item_scope)
            return
        if "where" in node:
            self.error(join(path, "where"), f'"where" is only for any / all / none, not "{op}"')
        self.value(node, path, spec, op)

    def window(self, node: dict, path: str, spec: FieldSpec) -> None:
        if "window" not in node or node["window"] is None:
            return
        window = node["window"]
        if not spec.supports_window:
            self.error(join(path, "window"), f'"{spec.name}" has no window')
            return
        units = spec.window_units
        if not isinstance(window, dict) or len(window) != 1 or next(iter(window)) not in units:
            shapes = " or ".join(f'{{"{unit}": N}}' for unit in units)
            self.error(join(path, "window"), f"a window is {shapes}")
            return
        unit, amount = next(iter(window.items()))
        limit = MAX_WINDOW_DAYS * WINDOW_UNIT_PER_DAY[unit]
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= limit:
            self.error(join(path, f"window.{unit}"), f"{unit} must be a whole number between 1 and {limit}")

    def value(self, node: dict, path: str, spec: FieldSpec, op: str) -> None:
        value_path = join(path, "value")
        takes = OPERATORS[op].takes
        if takes in (NOTHING, WHERE):
            if node.get("value") is not None:
                self.error(value_path, f'"{op}" takes no value')
            return
        if "value" not in node:
            self.error(value_path, f'"{op}" needs a value')
            return
        value = node["value"]
        if takes == VALUES:
            if not isinstance(value, list) or not value:
                self.error(value_path, f'"{op}" takes a non-empty list')
                return
            if len(value) > MAX_LIST_VALUES:
                self.error(value_path, f"at most {MAX_LIST_VALUES} values")
                return
            for index, item in enumerate(value):
                self.scalar(item, f"{value_path}[{index}]", spec, op)
            return
        self.scalar(value, value_path, spec, op)

    def scalar(self, value: Any, path: str, spec: FieldSpec, op: str) -> None:
        kind = spec.type
        if kind in ("text", "tags") or op in ("contains", "not_contains", "starts_with", "ends_with"):
            if not isinstance(value, str):
                self.error(path, f"{value!r} is not text")
            elif len(value) > MAX_TEXT:
                self.error(path, f"text longer than {MAX_TEXT} characters")
            elif op in ("contains_any", "contains_words_any") and not value.strip():
                self.error(path, "an empty word matches everything")
            return
        if kind == "choice":
            allowed = [key for key, _ in spec.choices]
            if not isinstance(value, str) or (allowed and value not in allowed):
                self.error(path, f"{value!r} is not one of {', '.join(allowed)}")
            return
        if kind in NUMERIC_TYPES:
            message = number_error(value, kind)
            if message:
                self.error(path, message)
            return
        if kind == "boolean":
            if not isinstance(value, bool):
                self.error(path, f"{value!r} is not true or false")
            return
        if kind in ("date", "datetime"):
            message = date_error(value, kind)
            if message:
                self.error(path, message)
            return
        self.error(path, f'"{op}" cannot compare a {kind} field with a value')


def condition_validate(
    condition: Any, *, path: str = "", scopes: Iterable[str] = ("customer",), audience: bool = False
) -> list[ConditionError]:
    """
    Every problem in `condition`, each with its JSON path under `path`. `scopes` are the objects the
    trigger provides ("customer", "order", ...); `audience=True` also refuses fields that cannot be
    compiled to SQL. `None` (no condition) is valid.
    """
    if condition is None:
        return []
    validator = _Validator(audience=audience)
    validator.node(condition, path, frozenset(scopes), 1)
    return validator.errors


def condition_check(condition: Any, *, path: str = "") -> None:
    """Raise ConditionInvalid when `condition` is malformed (the evaluators call this before running)."""
    # Every scope some field lives in: validating against all of them checks structure and types only.
    errors = condition_validate(condition, path=path, scopes=scopes_all())
    if errors:
        raise ConditionInvalid(errors)
