"""
The notify.* actions: e-mail, SMS and in-app messages through messaging (apps/customers/messaging). Each run
step makes exactly one Delivery row, keyed by the step's effect key (a retried or re-delivered step finds
its row and never sends twice); consent, the address and send governance may suppress or delay it, and
the step's outcome says so. A permanent provider failure fails the step with the reason; a transient one
leaves the delivery queued for the messaging retry sweep.
"""

from __future__ import annotations

from typing import Any

from apps.customers.messaging import consent, rendering
from apps.customers.messaging.choices import Channel, DeliveryStatus, Purpose
from apps.customers.messaging.models import Delivery
from apps.customers.messaging.services import Content, Message, deliveries_queue_many, message_send, recipient_address
from apps.customers.models import Customer
from loyalty_site.lib import tasks as task_queue
from loyalty_site.lib.errors import DomainError

from .engine import context_build, params_render
from .registry import ActionRefused, ActionSpec, ParamSpec

CHANNELS = {"notify.email": Channel.EMAIL, "notify.sms": Channel.SMS, "notify.in_app": Channel.IN_APP}
# Deliveries per sending task: tasks run in parallel on the workers; each reuses its e-mail connection.
SEND_TASK_SIZE = 500  # = messaging's BATCH_SIZE: one SMTP session per task

PURPOSE_PARAM = ParamSpec(
    name="purpose",
    type="choice",
    label="Purpose",
    choices=tuple(Purpose.values),
    help="marketing (default: needs consent, obeys caps and quiet hours) or transactional",
)
TEMPLATE_PARAM = ParamSpec(name="template", type="text", label="Template", help="A message template's key")


def cause_of(context: Any) -> str:
    extra = getattr(context, "extra", None) or {}
    run_id = extra.get("run_id")
    if run_id is None:
        return ""
    return f"bulk_run:{run_id}" if extra.get("bulk") else f"workflow_run:{run_id}"


def content_of(context: Any, params: dict[str, Any], *, channel: str) -> Content:
    if params.get("template"):
        try:
            return rendering.template_content(
                str(params["template"]), context.customer, channel=channel, context={"evaluation": context}
            )
        except DomainError as error:
            raise ActionRefused(error.message) from error
    purpose = str(params.get("purpose") or Purpose.MARKETING)
    footer = consent.unsubscribe_url(context.customer, channel=channel, purpose=purpose) if not params.get("to") else ""
    return rendering.inline_content(
        subject=str(params.get("subject") or ""), body=str(params.get("body") or ""), unsubscribe_url=footer
    )


def priority_of(context: Any) -> int:
    """The sending workflow's message priority (0 outside a workflow)."""
    from .models import Workflow

    workflow_id = (getattr(context, "extra", None) or {}).get("workflow_id")
    if workflow_id is None:
        return 0
    return Workflow.objects.filter(pk=workflow_id).values_list("message_priority", flat=True).first() or 0


def outcome_of(delivery: Delivery) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "delivery": delivery.pk,
        "channel": delivery.channel,
        "status": delivery.status,
        "to": delivery.to,
    }
    if delivery.subject:
        outcome["subject"] = delivery.subject
    if delivery.reason:
        outcome["reason"] = delivery.reason
    if delivery.send_after and delivery.status == DeliveryStatus.QUEUED:
        outcome["send_after"] = delivery.send_after.isoformat()
    if delivery.error:
        outcome["error"] = delivery.error
    return outcome


def _run(channel: str) -> Any:
    def run(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
        delivery = message_send(
            key=effect_key,
            channel=channel,
            purpose=str(params.get("purpose") or Purpose.MARKETING),
            customer=context.customer,
            content=content_of(context, params, channel=channel),
            cause=cause_of(context),
            to=str(params.get("to") or ""),
            priority=priority_of(context),
        )
        if delivery.status == DeliveryStatus.FAILED:
            raise ActionRefused(f"delivery #{delivery.pk} failed ({delivery.reason}): {delivery.error}")
        return outcome_of(delivery)

    return run


def _preview(channel: str) -> Any:
    def preview(context: Any, params: dict[str, Any]) -> dict[str, Any]:
        address, usable = recipient_address(context.customer, channel=channel, to=str(params.get("to") or ""))
        content = content_of(context, params, channel=channel)
        return {
            f"would_{channel}": address or "the customer's inbox",
            "address_usable": usable,
            "purpose": params.get("purpose") or Purpose.MARKETING,
            "subject": content.subject,
            "body": content.text,
        }

    return preview


def _params_check(channel: str, inline: tuple[str, ...]) -> Any:
    """Save-time: a published template of this channel, or the inline params (body, and a subject)."""

    def check(params: dict[str, Any]) -> list[tuple[str, str]]:
        key = params.get("template")
        if key:
            problem = rendering.template_problem(str(key), channel=channel) if isinstance(key, str) else "Must be text."
            return [("template", problem)] if problem else []
        return [(name, "This parameter is required (or choose a template).") for name in inline if not params.get(name)]

    return check


email_params_check = _params_check(Channel.EMAIL, ("subject", "body"))
sms_params_check = _params_check(Channel.SMS, ("body",))
in_app_params_check = _params_check(Channel.IN_APP, ("subject", "body"))


run_email, preview_email = _run(Channel.EMAIL), _preview(Channel.EMAIL)
run_sms, preview_sms = _run(Channel.SMS), _preview(Channel.SMS)
run_in_app, preview_in_app = _run(Channel.IN_APP), _preview(Channel.IN_APP)


def bulk_queue(
    spec: ActionSpec,
    step: dict[str, Any],
    customers: list[Customer],
    *,
    run_id: int,
    workflow_id: int,
    as_of: Any,
    priority: int = 0,
) -> int:
    """
    A bulk run's notify step over a set of customers: content rendered per customer in memory, the delivery
    rows written set-based (`deliveries_queue_many`, keyed per run x step x customer, so a re-run chunk adds
    none), and the due ones sent by parallel tasks of SEND_TASK_SIZE after the chunk commits.
    """
    channel = CHANNELS[spec.name]
    cause = f"bulk_run:{run_id}"
    extra = {"run_id": run_id, "cause": cause, "workflow_id": workflow_id, "bulk": True}
    raw = step.get("params", {})
    messages = []
    for customer in customers:
        context = context_build(customer=customer, now=as_of, extra=extra)
        params = params_render(spec, raw, context)
        messages.append(
            Message(
                key=f"br{run_id}:{step['id']}:{customer.pk}"[:120],
                customer=customer,
                content=content_of(context, params, channel=channel),
                to=str(params.get("to") or ""),
            )
        )
    due = deliveries_queue_many(
        messages=messages,
        channel=channel,
        purpose=str(raw.get("purpose") or Purpose.MARKETING),
        cause=cause,
        priority=priority,
    )
    for start in range(0, len(due), SEND_TASK_SIZE):
        task_queue.enqueue_on_commit(
            "apps.customers.messaging.tasks.deliveries_send_task", due[start : start + SEND_TASK_SIZE]
        )
    return len(messages)
