"""
"Why didn't it fire?" on the customer's admin page: their recent trigger events and, for each, every
workflow listening to that trigger with its run outcome or the reason there is no run.

An inclusion tag so the customers app's templates can show it without the customers app importing
automations in Python.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Q

from apps.automations.choices import WorkflowStatus
from apps.customers.choices import DomainEventStatus

register = template.Library()

RECENT_EVENTS = 15


def _no_run_reason(workflow: Any, event: Any) -> str:
    # The engine is done with an event once it holds the engine's receipt (other consumers may still work).
    if event.status != DomainEventStatus.PROCESSED and not event.engine_done:
        return "Event not processed yet (queued)."
    if workflow.created_at and workflow.created_at > event.created_at:
        return "Workflow created after this event."
    if workflow.status != WorkflowStatus.ACTIVE:
        return f"Workflow was not active ({workflow.status})."
    return "No run: the workflow was not active when the event was processed."


def _messages_not_sent(runs: list[Any]) -> dict[int, list[Any]]:
    """run id -> its deliveries that did not go out (suppressed, failed, or waiting), in one query."""
    from apps.customers.messaging.choices import DeliveryStatus
    from apps.customers.messaging.models import Delivery

    if not runs:
        return {}
    causes = {f"workflow_run:{run.pk}": run.pk for run in runs}
    found: dict[int, list[Any]] = {}
    rows = Delivery.objects.filter(cause__in=list(causes)).exclude(status=DeliveryStatus.SENT).order_by("pk")
    for delivery in rows:
        found.setdefault(causes[delivery.cause], []).append(delivery)
    return found


def why_rows(customer: Any, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    from django.db.models import Exists, OuterRef

    from apps.automations.models import Workflow, WorkflowRun
    from apps.automations.signals import CONSUMER
    from apps.customers.models import DomainEvent, DomainEventReceipt

    receipt = DomainEventReceipt.objects.filter(event=OuterRef("pk"), consumer=CONSUMER)
    events = list(
        DomainEvent.objects.filter(customer=customer)
        .annotate(engine_done=Exists(receipt))
        .order_by("-created_at", "-pk")[:limit]
    )
    if not events:
        return []
    names = {event.name for event in events}
    # Active workflows only: drafts and paused ones could not have fired, listing them is noise.
    workflows = list(Workflow.objects.filter(trigger__in=names, status=WorkflowStatus.ACTIVE).order_by("name", "pk"))
    runs = WorkflowRun.objects.filter(trigger_event__in=events).filter(Q(customer=customer) | Q(customer__isnull=True))
    by_key = {(run.workflow_id, run.trigger_event_id): run for run in runs.order_by("pk")}
    messages = _messages_not_sent(list(by_key.values()))
    rows = []
    for event in events:
        outcomes = []
        for workflow in workflows:
            if workflow.trigger != event.name:
                continue
            run = by_key.get((workflow.pk, event.pk))
            outcomes.append(
                {
                    "workflow": workflow,
                    "run": run,
                    "status": run.status if run else "no run",
                    "reason": (run.skip_reason or run.error or "") if run else _no_run_reason(workflow, event),
                    # the run's messages that were suppressed, delayed or failed, with the reason
                    "messages": messages.get(run.pk, []) if run else [],
                }
            )
        rows.append({"event": event, "outcomes": outcomes})
    return rows


@register.inclusion_tag("automations/why_not_fired.html", takes_context=True)
def why_not_fired(context: dict[str, Any], customer: Any) -> dict[str, Any]:
    request = context.get("request")
    allowed = bool(request and request.user.has_perm("automations.view_workflow"))
    return {
        "rows": why_rows(customer) if allowed and customer is not None else [],
        "allowed": allowed,
        "customer": customer,
        "request": request,  # the references in the table link for this reader
    }
