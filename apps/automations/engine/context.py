"""
What steps read: the evaluation context (re-read from the database, so conditions after a wait see fresh
data), condition evaluation with the values it read, and dynamic parameters rendered into action params.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model
from django.utils import timezone

from apps.customers.models import Cart, Customer, CustomerEvent, DraftOrder, Order, OrderLine, Product, Store
from loyalty_site.lib.conditions import EvaluationContext, condition_evaluate, template_render

from .. import registry
from .scope import batch_scope


def _fetch(model: type[Model], pk: Any) -> Any:
    if pk in (None, ""):
        return None
    scope = batch_scope()
    if scope is not None:  # a batch of events loaded its contexts' objects once per model
        loaded = scope.objects.get(model._meta.label)
        if loaded is not None and pk in loaded:
            return loaded[pk]
    return model._default_manager.filter(pk=pk).first()


# The payload keys naming the objects a context reads, with their models (`context_build`).
CONTEXT_OBJECTS: tuple[tuple[str, type[Model]], ...] = (
    ("order_id", Order),
    ("line_id", OrderLine),
    ("product_id", Product),
    ("cart_id", Cart),
    ("draft_order_id", DraftOrder),
    ("custom_event_id", CustomerEvent),
    ("store_id", Store),
)


def context_objects_load(payloads: list[dict[str, Any]]) -> dict[str, dict[Any, Any]]:
    """
    The objects these payloads' contexts read, one query per model (a batch of events). Only integer ids are
    loaded: anything else is left to `_fetch`'s own query, so it fails (or not) for its event alone.
    """
    loaded: dict[str, dict[Any, Any]] = {}
    for key, model in CONTEXT_OBJECTS:
        ids = {value for payload in payloads if type(value := payload.get(key)) is int}
        if ids:
            rows = {row.pk: row for row in model._default_manager.filter(pk__in=ids)}
            loaded[model._meta.label] = {pk: rows.get(pk) for pk in ids}  # a missing row reads as None
    return loaded


def context_build(
    *,
    customer: Customer | None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
    **objects: Any,
) -> EvaluationContext:
    """An EvaluationContext re-read from the database (conditions after a wait see fresh data)."""
    payload = payload or {}
    location = None
    if "latitude" in payload:
        location = {key: payload.get(key) for key in ("latitude", "longitude", "distance_m")}
    return EvaluationContext(
        customer=customer,
        now=now or timezone.now(),
        order=objects.get("order") or _fetch(Order, payload.get("order_id")),
        line=objects.get("line") or _fetch(OrderLine, payload.get("line_id")),
        product=objects.get("product") or _fetch(Product, payload.get("product_id")),
        cart=objects.get("cart") or _fetch(Cart, payload.get("cart_id")),
        draft_order=objects.get("draft_order") or _fetch(DraftOrder, payload.get("draft_order_id")),
        custom_event=objects.get("custom_event") or _fetch(CustomerEvent, payload.get("custom_event_id")),
        store=objects.get("store") or _fetch(Store, payload.get("store_id")),
        location=location,
        extra={"payload": payload, **(extra or {})},
        tag=objects.get("tag") or payload.get("tag"),
    )


def jsonable(value: Any) -> Any:
    """`value` as JSON-storable data (step inputs and outcomes, traces)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def evaluate(condition: Any, context: EvaluationContext) -> tuple[bool, Any]:
    """(result, the values read by JSON path) of a condition for one context."""
    evaluation = condition_evaluate(condition, context)
    return bool(evaluation.result), jsonable(getattr(evaluation, "values", {}))


def params_render(spec: registry.ActionSpec, params: dict[str, Any], context: EvaluationContext) -> dict[str, Any]:
    """Render {{ dynamic parameters }}; in a text_list a list-valued variable expands to several items."""
    rendered: dict[str, Any] = {}
    for name, value in params.items():
        param = spec.param(name)
        if param is None or not param.dynamic:
            rendered[name] = value
            continue
        if param.type == "text_list":
            items = [value] if isinstance(value, str) else list(value or [])
            out: list[str] = []
            for item in items:
                if isinstance(item, str) and "{{" in item:
                    out.extend(text for text in template_render(item, context) if text.strip())
                else:
                    out.append(item)
            rendered[name] = out
        elif isinstance(value, str) and "{{" in value:
            rendered[name] = ", ".join(template_render(value, context))
        else:
            rendered[name] = value
    return rendered
