"""Receivers for data-plane signals: they only enqueue a loyalty task (no business logic here)."""

from typing import Any

from apps.customers import signals as customer_signals

from .choices import RuleKind
from .models import EarningRule
from .tasks import enqueue


def on_order_created(sender: Any, *, order: Any, **kwargs: Any) -> None:
    enqueue("apps.loyalty.tasks.order_earn_task", order.pk)


def on_order_changed(sender: Any, *, order: Any, **kwargs: Any) -> None:
    enqueue("apps.loyalty.tasks.order_reverse_task", order.pk)


def on_custom_event(sender: Any, *, custom_event: Any, **kwargs: Any) -> None:
    # Most custom events earn nothing: one indexed lookup here saves a queue round trip per event.
    if EarningRule.objects.filter(kind=RuleKind.FIXED_EVENT, event_name=custom_event.name, is_active=True).exists():
        enqueue("apps.loyalty.tasks.event_earn_task", custom_event.pk)


def connect() -> None:
    customer_signals.order_created.connect(on_order_created, dispatch_uid="loyalty.order_created")
    customer_signals.order_refunded.connect(on_order_changed, dispatch_uid="loyalty.order_refunded")
    customer_signals.order_cancelled.connect(on_order_changed, dispatch_uid="loyalty.order_cancelled")
    customer_signals.custom_event_received.connect(on_custom_event, dispatch_uid="loyalty.custom_event")
