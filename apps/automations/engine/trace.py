"""
The dry run ("test run"): evaluate a definition for one customer and their latest (or chosen) order, cart,
draft or custom event, and return the step-by-step trace — branches with their values, rendered params,
what each action would do. It walks the steps with the same walker as execution and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from apps.customers.models import Cart, Customer, CustomerEvent, DraftOrder, Order
from loyalty_site.lib.conditions import EvaluationContext

from .. import registry
from ..secret_params import params_redact
from .context import context_build, evaluate, jsonable, params_render
from .split import split_choose
from .waits import wait_until
from .walker import steps_walk

# scope -> (model, context key, the field that orders "latest")
SUBJECT_FIELDS: dict[str, tuple[type[Model], str, str]] = {
    "order": (Order, "order", "placed_at"),
    "cart": (Cart, "cart", "updated_at"),
    "draft_order": (DraftOrder, "draft_order", "created_at"),
    "event": (CustomerEvent, "custom_event", "occurred_at"),
}


def _subjects(definition: dict, customer: Customer, subject: Any, given: dict[str, Any]) -> dict[str, Any]:
    trigger = (definition.get("trigger") or {}).get("event", "")
    spec = registry.trigger_get(trigger)
    scopes = spec.scopes if spec else ("customer",)
    objects = {key: value for key, value in given.items() if value is not None}
    for scope in scopes:
        if scope not in SUBJECT_FIELDS:
            continue
        model, key, latest = SUBJECT_FIELDS[scope]
        if key in objects:
            continue
        rows = model._default_manager.filter(customer=customer)
        found = rows.filter(pk=subject).first() if subject not in (None, "") else None
        objects[key] = found or rows.order_by(f"-{latest}", "-pk").first()
    order = objects.get("order")
    if order is not None and ("line" in scopes or "product" in scopes) and "line" not in objects:
        line = order.lines.select_related("product").first() if hasattr(order, "lines") else None
        objects["line"] = line
        objects["product"] = getattr(line, "product", None)
    return objects


def trace_run(
    *,
    definition: dict[str, Any],
    customer: Customer,
    subject: Any = None,
    event: Any = None,
    workflow_id: int | None = None,
    **given: Any,
) -> dict[str, Any]:
    """
    Evaluate a definition for one customer and return the step-by-step trace; writes nothing. `workflow_id`
    keys the A/B splits (a saved workflow's test run takes the branch its real runs would).
    """
    now = timezone.now()
    with transaction.atomic():
        payload = dict(getattr(event, "payload", None) or {})
        objects = _subjects(definition, customer, subject, given) if event is None else {}
        context = context_build(customer=customer, payload=payload, now=now, extra={"test": True}, **objects)
        trace: dict[str, Any] = {"steps": [], "conditions": [], "actions": [], "trigger": None}
        where = (definition.get("trigger") or {}).get("where")
        if where:
            passed, values = evaluate(where, context)
            trace["trigger"] = {"passed": passed, "values": values}
            trace["conditions"].append({"path": "trigger.where", "result": passed, "values": values})
        else:
            trace["trigger"] = {"passed": True, "values": {}}
        if trace["trigger"]["passed"]:
            steps_walk(definition.get("steps") or [], _TraceVisitor(trace, now, workflow_id), context)
        # Belt and braces: evaluation is read-only, but a test run must never leave a trace in the database.
        transaction.set_rollback(True)
    waits = [step for step in trace["steps"] if step["badge"] == "waiting"]
    if not trace["trigger"]["passed"]:
        trace["summary"] = "The trigger filter is false for this customer: the workflow would not run."
    else:
        count = len(trace["actions"])
        trace["summary"] = f"{count} action{'s' if count != 1 else ''} would run" + (
            f", after {len(waits)} wait{'s' if len(waits) != 1 else ''}." if waits else "."
        )
    trace["subject"] = {key: getattr(value, "pk", None) for key, value in objects.items() if value is not None}
    # The currency of each record whose money fields are in its own currency (order.total is in EUR for a
    # EUR order): the page shows those amounts with it. A line's amounts are in its order's currency.
    trace["currencies"] = {
        key: value.currency for key, value in objects.items() if isinstance(getattr(value, "currency", None), str)
    }
    if "order" in trace["currencies"]:
        trace["currencies"]["line"] = trace["currencies"]["order"]
    return trace


class _TraceVisitor:
    """The dry run: each step adds its entry to the trace; a wait is noted and the walk goes on."""

    def __init__(self, trace: dict[str, Any], now: datetime, workflow_id: int | None = None) -> None:
        self.trace = trace
        self.now = now
        self.workflow_id = workflow_id

    @staticmethod
    def _entry(step: dict, path: str) -> dict[str, Any]:
        return {"id": step.get("id") or path, "path": path}

    def condition(self, step: dict, path: str, context: EvaluationContext) -> Iterator[tuple[str, EvaluationContext]]:
        passed, values = evaluate(step["if"], context)
        branch = "then" if passed else "else"
        entry = self._entry(step, path)
        entry.update(
            kind="condition",
            branch=branch,
            badge=branch,
            label="true → then" if passed else "false → else",
            details=[
                [_value_label(step["if"], name), value]
                for name, value in (values.items() if isinstance(values, dict) else [])
            ],
            result=passed,
            values=values,
        )
        self.trace["conditions"].append({"path": f"{path}.if", "result": passed, "values": values})
        self.trace["steps"].append(entry)
        yield branch, context

    def split(self, step: dict, path: str, context: EvaluationContext) -> Iterator[tuple[str, EvaluationContext]]:
        customer_id = context.customer.pk if context.customer is not None else 0
        choice = split_choose(step, path, workflow_id=self.workflow_id, customer_id=customer_id)
        entry = self._entry(step, path)
        entry.update(
            kind="split",
            branch=choice.branch,
            badge=choice.name,
            label=f"A/B split → branch {choice.name} ({choice.percent} %)",
            details=[["branch", choice.name], ["share", f"{choice.percent} %"]],
        )
        self.trace["steps"].append(entry)
        yield choice.branch, context

    def wait(self, step: dict, path: str, context: EvaluationContext) -> None:
        until = wait_until(step["wait"], self.now)
        entry = self._entry(step, path)
        entry.update(
            kind="wait",
            badge="waiting",
            label=f"would wait until {until:%Y-%m-%d %H:%M}",
            details=[["until", until.isoformat()]],
        )
        self.trace["steps"].append(entry)
        return None

    def resumed(self, step: dict, path: str, context: EvaluationContext) -> None:  # a dry run never resumes
        return None

    def action(self, step: dict, path: str, context: EvaluationContext) -> None:
        spec = registry.action_get(step["action"])
        params = params_redact(spec, params_render(spec, step.get("params") or {}, context) if spec else {})
        preview = spec.preview(context, params) if spec and spec.preview else {"params": params}
        text = _action_sentence(spec, params) if spec else step["action"]
        entry = self._entry(step, path)
        entry.update(
            kind="action",
            badge="would_run",
            label="would run",
            details=[[key, value] for key, value in jsonable(preview).items()],
            action=step["action"],
            params=jsonable(params),
            would=jsonable(preview),
        )
        self.trace["actions"].append(text)
        self.trace["steps"].append(entry)


def _value_label(condition: Any, key: str) -> str:
    """A readable label for an evaluated value: the field at that relative path ("all[0]" -> its field)."""
    node: Any = condition
    for segment in key.split(".") if key else []:
        match = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", segment)
        if match is None or not isinstance(node, dict) or match.group(1) not in node:
            return key
        node = node[match.group(1)]
        if match.group(2) is not None:
            try:
                node = node[int(match.group(2))]
            except (IndexError, TypeError, KeyError):
                return key
    field = node.get("field") if isinstance(node, dict) else None
    return f"{field} ({key})" if field and field != key else key


def _action_sentence(spec: registry.ActionSpec, params: dict[str, Any]) -> str:
    shown = ", ".join(
        f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}" for key, value in params.items()
    )
    return f"{spec.label} ({shown})" if shown else spec.label
