"""Plain-language sentences for conditions and steps, from the catalog's labels (gallery cards, run pages)."""

from __future__ import annotations

import re
from typing import Any

from loyalty_site.lib.conditions.catalog import fields_all
from loyalty_site.lib.conditions.operators import OPERATORS


def _operator_words(op: str, field_type: str | None) -> str:
    """The catalog's label of the operator (its date wording on date fields); unknown ones as written."""
    operator = OPERATORS.get(op)
    if operator is None:
        return op
    return operator.date_label if field_type in {"date", "datetime"} and operator.date_label else operator.label


def _labels() -> dict[str, Any]:
    return {spec.name: spec for spec in fields_all()}


def _value(value: Any) -> str:
    if isinstance(value, dict) and "days_ago" in value:
        return f"{value['days_ago']} days ago"
    if isinstance(value, dict) and "days_from_now" in value:
        return f"in {value['days_from_now']} days"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def condition_sentence(condition: Any, specs: dict[str, Any] | None = None) -> str:
    specs = specs if specs is not None else _labels()
    if not isinstance(condition, dict):
        return str(condition)
    for mode, joiner in (("all", " and "), ("any", " or ")):
        if mode in condition and isinstance(condition[mode], list):
            parts = [condition_sentence(child, specs) for child in condition[mode]]
            if not parts:
                return "always" if mode == "all" else "never"
            text = joiner.join(parts)
            return f"({text})" if len(parts) > 1 else text
    if "not" in condition:
        return f"not {condition_sentence(condition['not'], specs)}"
    name = condition.get("field", "?")
    spec = specs.get(name) or specs.get(name.rsplit(".", 1)[0] + ".*")
    label = spec.label if spec else name
    if spec and name.endswith(".*") is False and spec.name.endswith(".*"):
        label = f"{spec.label} “{name.rsplit('.', 1)[-1]}”"
    window = condition.get("window") or {}
    if window.get("days"):
        label += f" in the last {window['days']} days"
    op = condition.get("op", "")
    words = _operator_words(op, spec.type if spec else None)
    if "where" in condition:
        return f"{label} {words} {condition_sentence(condition['where'], specs)}"
    if "value" in condition:
        return f"{label} {words} {_value(condition['value'])}"
    return f"{label} {words}"


def steps_sentences(steps: list[dict[str, Any]], actions: dict[str, str], prefix: str = "") -> list[str]:
    """One line per step, nested branches prefixed ("then: …", "otherwise: …")."""
    specs = _labels()
    lines: list[str] = []

    def walk(items: list[dict[str, Any]], lead: str) -> None:
        for step in items:
            if "action" in step:
                params = step.get("params") or {}
                shown = ", ".join(
                    ", ".join(str(item) for item in value) if isinstance(value, list) else str(value)
                    for value in params.values()
                    if isinstance(value, str | list | int)
                )
                lines.append(f"{lead}{actions.get(step['action'], step['action'])}{': ' + shown if shown else ''}")
            elif "wait" in step:
                wait = step["wait"] or {}
                if "until_time" in wait:
                    lines.append(f"{lead}Wait until {wait['until_time']}")
                else:
                    lines.append(f"{lead}Wait " + " ".join(f"{value} {key}" for key, value in wait.items()))
            elif "if" in step:
                lines.append(f"{lead}If {condition_sentence(step['if'], specs)}")
                walk(step.get("then") or [], lead + "then: ")
                walk(step.get("else") or [], lead + "otherwise: ")

    walk(steps, prefix)
    return lines


_PART = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")


def condition_at(condition: Any, relative_path: str) -> Any:
    """The sub-condition at "all[1].not.where" inside `condition` (None when the path leads nowhere)."""
    node = condition
    for name, index in _PART.findall(relative_path or ""):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def field_label(condition: Any, specs: dict[str, Any]) -> str | None:
    if not isinstance(condition, dict) or "field" not in condition:
        return None
    spec = specs.get(condition["field"])
    label = spec.label if spec else condition["field"]
    window = condition.get("window") or {}
    return f"{label} (last {window['days']} days)" if window.get("days") else label


# Money read from one order, line, cart or draft order is in that record's currency; the rest (customer
# totals, *_shop amounts, loyalty) is in the shop currency.
_OWN_CURRENCY_SCOPES = {"order": "order", "line": "order", "cart": "cart", "draft_order": "draft_order"}


def money_shown(condition: Any, value: Any, specs: dict[str, Any], currencies: dict[str, str]) -> Any:
    """A money value read by a condition, shown with its currency (`$1,234.50`, `¥20,640`)."""
    from loyalty_site.lib.money import money_format, shop_currency

    field = condition.get("field") if isinstance(condition, dict) else None
    spec = specs.get(field) if isinstance(field, str) else None
    if spec is None or spec.type != "money" or value is None or isinstance(value, bool | list | dict):
        return value
    scope = spec.name.split(".")[0]
    own = _OWN_CURRENCY_SCOPES.get(scope)
    currency = shop_currency() if own is None or spec.name.endswith("_shop") else currencies.get(own)
    try:
        return money_format(value, currency) if currency else value
    except (ArithmeticError, ValueError):
        return value


def step_story(step: Any, actions: dict[str, str], currencies: dict[str, str] | None = None) -> dict[str, Any]:
    """
    What a run step did, in words: {"title", "values": [(label, value)]} for the run page. Money values
    carry their currency: the shop currency's, or the trigger record's (`currencies`: {"order": "JPY"}).
    """
    specs = _labels()
    inputs = step.inputs if isinstance(step.inputs, dict) else {}
    outcome = step.outcome if isinstance(step.outcome, dict) else {}
    values: list[tuple[str, Any]] = []
    title = ""
    if step.kind == "condition" and "condition" in inputs:
        title = f"If {condition_sentence(inputs['condition'], specs)}"
        for path, value in (outcome.get("values") or {}).items():
            node = condition_at(inputs["condition"], path)
            label = field_label(node, specs) or path
            values.append((label, money_shown(node, value, specs, currencies or {})))
    elif step.kind == "action":
        name: str = inputs.get("action", "")
        title = actions.get(name, name)
        for key, value in (inputs.get("params") or {}).items():
            values.append((key.replace("_", " "), ", ".join(map(str, value)) if isinstance(value, list) else value))
        for key, value in outcome.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            values.append((f"→ {key.replace('_', ' ')}", shown))
    elif step.kind == "trigger":
        title = f"Trigger {inputs.get('event', '')}".strip()
        if "condition" in inputs:
            title += f", only when {condition_sentence(inputs['condition'], specs)}"
    elif step.kind == "wait":
        title = "Wait"
    return {"title": title, "values": values}


def bulk_story(definition: dict[str, Any], progress: dict[str, Any], actions: dict[str, str]) -> list[dict[str, Any]]:
    """A bulk run's per-step figures laid over its definition: one row per step, with its counts."""
    specs = _labels()
    branches = progress.get("branches") or {}
    action_counts = progress.get("actions") or {}
    rows: list[dict[str, Any]] = []

    def walk(steps: list[dict[str, Any]], path: str, depth: int) -> None:
        for index, step in enumerate(steps):
            step_path = f"{path}[{index}]"
            step_id = step.get("id") or step_path
            if "if" in step:
                counts = branches.get(step_id) or {}
                reached = sum(counts.values())
                rows.append(
                    {
                        "id": step_id,
                        "path": step_path,
                        "depth": depth,
                        "kind": "condition",
                        "title": f"If {condition_sentence(step['if'], specs)}",
                        "figures": [("then", counts.get("then", 0)), ("else", counts.get("else", 0))],
                        "colour": "is-green" if reached else "is-grey",
                    }
                )
                walk(step.get("then") or [], f"{step_path}.then", depth + 1)
                walk(step.get("else") or [], f"{step_path}.else", depth + 1)
            elif "action" in step:
                count = action_counts.get(step_id, 0)
                rows.append(
                    {
                        "id": step_id,
                        "path": step_path,
                        "depth": depth,
                        "kind": "action",
                        "title": steps_sentences([step], actions)[0],
                        "figures": [("customers", count)],
                        "colour": "is-green" if count else "is-grey",
                    }
                )
            else:
                rows.append(
                    {
                        "id": step_id,
                        "path": step_path,
                        "depth": depth,
                        "kind": "wait",
                        "title": steps_sentences([step], actions)[0],
                        "figures": [],
                        "colour": "is-grey",
                    }
                )

    walk(definition.get("steps") or [], "steps", 0)
    return rows
