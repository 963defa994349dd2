"""
Receivers of every domain signal. They do no work: the DomainEvent row (the outbox) is already
committed when the signal is sent, so they only enqueue its processing — or, when no active workflow
listens to that trigger, record it processed at once (one indexed query instead of a queue round trip;
a workflow activated later does not see earlier events either way).
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from . import tasks


def _signals() -> dict[Signal, str]:
    from apps.customers.signals import TRIGGER_NAMES as CUSTOMER_TRIGGERS
    from apps.tagging.signals import customer_tag_added

    found = {**CUSTOMER_TRIGGERS, customer_tag_added: "customer.tag_added"}
    try:
        from apps.loyalty.signals import TRIGGER_NAMES as LOYALTY_TRIGGERS
    except ImportError:  # pragma: no cover - loyalty not installed
        LOYALTY_TRIGGERS = {}
    found.update(LOYALTY_TRIGGERS)
    return found


def _listened(trigger: str) -> bool:
    from .models import Workflow

    return Workflow.objects.filter(status="active", current_version__trigger=trigger).exists()


def domain_event_received(sender: Any, *, event: Any = None, **kwargs: Any) -> None:
    if event is None or getattr(event, "pk", None) is None:
        return
    if not _listened(event.name):
        from django.utils import timezone

        from apps.customers.models import DomainEvent

        DomainEvent.objects.filter(pk=event.pk, status="pending").update(
            status="processed", processed_at=timezone.now()
        )
        return
    tasks.enqueue("apps.automations.tasks.process_domain_event", event.pk)


def receivers_connect() -> None:
    for signal in _signals():
        signal.connect(domain_event_received, dispatch_uid=f"automations:{id(signal)}")
