"""
What the visual condition editor (`static/conditions/editor.js`) boots from, and its error wording.

The same payload serves the workflow builder and every admin form with a condition field
(`loyalty_site.lib.forms.ConditionField`): the catalog's fields with their labels, operators and currency,
and the operator table. `condition_error_plain` turns a validation error ("a field name is required" at
`all[0].field`) into the marketer's words ("Choose a field."), naming the field the rule is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from loyalty_site.lib.money import currency_symbol, shop_currency

from .catalog import FieldSpec, field_get, fields_all
from .operators import operators_describe

# Money fields of one order, line, cart or draft order are in that record's own currency; every other
# money field (customer totals, *_shop amounts) is in the shop currency.
OWN_CURRENCY_SCOPES = {"order", "line", "cart", "draft_order"}


def choices_payload(raw: Any) -> list[dict[str, str]]:
    """Choices given as pairs, dicts or plain values -> [{"value", "label"}]."""
    choices = []
    for choice in raw or ():
        if isinstance(choice, list | tuple):
            choices.append({"value": str(choice[0]), "label": str(choice[1] if len(choice) > 1 else choice[0])})
        elif isinstance(choice, dict):
            choices.append({"value": str(choice.get("value")), "label": str(choice.get("label", choice.get("value")))})
        else:
            choices.append({"value": str(choice), "label": str(choice)})
    return choices


def field_in_own_currency(spec: FieldSpec) -> bool:
    """A money field read in its record's own currency (`order.total`), not the shop's (`order.total_shop`)."""
    scope = spec.scope or spec.name.split(".")[0]
    return spec.type == "money" and scope in OWN_CURRENCY_SCOPES and not spec.name.endswith("_shop")


def field_currency(spec: FieldSpec) -> str:
    """The currency symbol a money input shows: the shop currency's, or "" for a record's own currency."""
    if spec.type != "money" or field_in_own_currency(spec):
        return ""
    return currency_symbol(shop_currency())


def field_payload(spec: FieldSpec) -> dict[str, Any]:
    scope = spec.scope or spec.name.split(".")[0]
    return {
        "name": spec.name,
        "label": spec.label,
        "type": spec.type,
        "group": scope.replace("_", " ").capitalize(),
        "scope": scope,
        "ops": list(spec.operators or ()),
        "windowable": bool(spec.supports_window),
        "window_units": list(spec.window_units),
        "item": spec.item_scope,
        "item_label": (spec.item_scope or "item").replace("_", " "),
        "picker": spec.suggest,
        "choices": choices_payload(spec.choices),
        "description": spec.description,
        "audience": spec.compilable,
        "currency": field_currency(spec),
        # Amounts in the record's own currency: the trace shows them with that record's currency code.
        "own_currency": field_in_own_currency(spec),
    }


def editor_catalog() -> dict[str, Any]:
    """The fields and the operator table, as every condition editor reads them (labels are defined once)."""
    return {
        "shop_currency": {"code": shop_currency(), "symbol": currency_symbol(shop_currency())},
        "fields": [field_payload(spec) for spec in fields_all()],
        "operators": operators_describe(),
    }


# --- Errors in the marketer's words -----------------------------------------------------------------

_SEGMENT = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")


def _path_parts(path: str) -> list[str | int]:
    return [int(index) if index else name for name, index in _SEGMENT.findall(path or "")]


def _leaf_at(condition: Any, path: str) -> tuple[dict | None, str]:
    """The deepest rule (a dict with "field") on `path`, and the key the error names inside it."""
    node: Any = condition
    leaf: dict | None = None
    last = ""
    for part in _path_parts(path):
        if isinstance(node, dict) and "field" in node:
            leaf = node
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
        else:
            last = part
            node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and "field" in node:
        leaf, last = node, ""
    return leaf, last


def _label(leaf: dict | None) -> tuple[str, FieldSpec | None]:
    name = leaf.get("field") if leaf else None
    if not isinstance(name, str) or not name:
        return "This condition", None
    try:
        spec = field_get(name)
    except KeyError:
        return name, None
    return spec.label, spec


def _value_word(spec: FieldSpec | None) -> str:
    if spec is None:
        return "a value"
    if spec.type == "tags" or spec.suggest == "tags":
        return "a tag name"
    if spec.type in ("date", "datetime"):
        return "a date or a number of days"
    if spec.type in ("number", "integer", "money"):
        return "an amount" if spec.type == "money" else "a number"
    return "a value"


def condition_error_plain(condition: Any, path: str, message: str) -> str:
    """
    `message` (a validation error at `path`, relative to the condition's root) in the marketer's words,
    naming the field of the rule it belongs to: "Tag name is required.", "Choose a field.".
    """
    leaf, key = _leaf_at(condition, path)
    label, spec = _label(leaf)
    text = message.strip()
    if text == "a field name is required":
        return "Choose a field."
    if text.startswith("unknown field"):
        return f"“{label}” is not a field any more: choose another one."
    if "is not available here" in text:
        return f"{label} cannot be used here: it is only known {text.rsplit('(', 1)[-1].rstrip(')')}."
    if text.endswith("cannot be used in an audience"):
        return f"{label} cannot be used to select customers (it is only known when an event happens)."
    if "inside a quantifier in an audience" in text:
        return f"{label} cannot be used inside “each item” when selecting customers."
    if text == "an operator is required":
        return f"{label}: choose how to compare."
    if text.endswith("needs a value") or text.endswith("takes a non-empty list"):
        if spec is not None and (spec.type == "tags" or spec.suggest == "tags"):
            return "Tag name is required."
        return f"{label}: enter {_value_word(spec)}."
    if text == "an empty word matches everything":
        return f"{label}: a word cannot be empty."
    if text.endswith('needs a "where" condition over each item'):
        return f"{label}: add a condition for each item."
    if key in ("window", "days") or path.endswith("window.days"):
        return f"{label}: the number of days must be a whole number between 1 and 3650."
    if key == "op":
        return f"{label}: this comparison is not available for this field; choose another."
    if text.startswith("the condition has more than") or text.startswith("the condition is nested deeper"):
        return f"The condition is too big: {text.removeprefix('the condition ')}."
    return f"{label}: {text[:1].lower()}{text[1:]}" + ("" if text.endswith(".") else ".")


CONDITION_KEYS = {"all", "any", "not", "field", "op", "value", "window", "where"}


def condition_relative_path(path: str) -> str:
    """An error path under the condition's own root: "condition.all[0].value" -> "all[0].value"."""
    head, dot, rest = path.partition(".")
    name = head.split("[", 1)[0]
    if not name or name in CONDITION_KEYS:
        return path
    tail = head[len(name) :]
    return tail + ("." if tail and dot else "") + rest if dot else tail


def condition_errors_plain(condition: Any, errors: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """Validation errors [(path, message)] -> [{"path" (under the condition's root), "message" (plain words)}]."""
    located = []
    for path, message in errors:
        relative = condition_relative_path(path)
        located.append({"path": relative, "message": condition_error_plain(condition, relative, message)})
    return located
