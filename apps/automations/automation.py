"""What the engine itself offers: the notify.* actions (e-mail, SMS, in-app through messaging; signed webhook)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils import timezone

from apps.customers.messaging.choices import Channel
from apps.customers.messaging.services import delivery_record_sent

from . import notify
from .definitions import STATE_TRIGGER
from .registry import ActionSpec, ParamSpec, TriggerSpec, register_action, register_trigger
from .secret_params import secret_reveal
from .webhooks import secret_check, target_resolve, url_check, webhook_send

# --- Triggers ----------------------------------------------------------------------------------------

register_trigger(
    TriggerSpec(
        name=STATE_TRIGGER,
        label="Customer matches a condition (state tag)",
        description="A state tag: customers matching the condition carry the tag — added when they start "
        "matching, removed when they stop (orders, refunds, tags, a window sliding); steps run on entering, "
        "'left' steps on leaving.",
        scopes=("customer",),
        group="State tags",
    )
)

# --- Actions -----------------------------------------------------------------------------------------


def _message_id(effect_key: str) -> str:
    return "msg_" + hashlib.sha256(effect_key.encode()).hexdigest()[:32]


def _ids(context: Any) -> dict[str, Any]:
    names = ("customer", "order", "line", "product", "cart", "draft_order", "custom_event", "store")
    return {f"{name}_id": getattr(getattr(context, name, None), "pk", None) for name in names}


def run_webhook(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
    """POST a signed JSON message; the webhook-id is stable per run step so receivers can de-duplicate."""
    extra = getattr(context, "extra", None) or {}
    payload = {
        "type": str(params.get("event_type") or "workflow.webhook"),
        "timestamp": timezone.now().isoformat(),
        "data": {
            "workflow_id": extra.get("workflow_id"),
            "run_id": extra.get("run_id"),
            "trigger": (extra.get("payload") or {}),
            **_ids(context),
            "customer_email": getattr(context.customer, "email", None),
            "fields": params.get("data") or {},
        },
    }
    message_id = _message_id(effect_key)
    outcome = webhook_send(
        url=str(params["url"]), secret=secret_reveal(params["secret"]), message_id=message_id, payload=payload
    )
    delivery = delivery_record_sent(
        key=effect_key,
        channel=Channel.WEBHOOK,
        customer=context.customer,
        to=str(params["url"]),
        provider_message_id=message_id,
        cause=notify.cause_of(context),
    )
    return {**outcome, "delivery": delivery.pk}


def preview_webhook(context: Any, params: dict[str, Any]) -> dict[str, Any]:
    target = target_resolve(str(params["url"]))
    return {"would_post_to": params["url"], "address": target.address}


register_action(
    ActionSpec(
        name="notify.email",
        label="Send an e-mail",
        description="E-mail the customer (or a fixed address): a template, or an inline subject and body. "
        "Marketing e-mail needs consent and obeys caps and quiet hours; every message is a delivery row.",
        group="Notify",
        params=[
            notify.TEMPLATE_PARAM,
            ParamSpec(name="to", type="email", label="To", help="Empty: the customer's address.", dynamic=True),
            ParamSpec(name="subject", type="text", label="Subject", dynamic=True),
            ParamSpec(name="body", type="text", label="Body", dynamic=True),
            notify.PURPOSE_PARAM,
        ],
        run=notify.run_email,
        preview=notify.preview_email,
        transactional=False,
        validate=notify.email_params_check,
    )
)
register_action(
    ActionSpec(
        name="notify.sms",
        label="Send an SMS",
        description="Text the customer's phone number (E.164) through the configured SMS provider.",
        group="Notify",
        params=[
            notify.TEMPLATE_PARAM,
            ParamSpec(name="to", type="text", label="To", help="Empty: the customer's phone (+15551234567)."),
            ParamSpec(name="body", type="text", label="Text", dynamic=True),
            notify.PURPOSE_PARAM,
        ],
        run=notify.run_sms,
        preview=notify.preview_sms,
        transactional=False,
        validate=notify.sms_params_check,
    )
)
register_action(
    ActionSpec(
        name="notify.in_app",
        label="Send an in-app message",
        description="Put a message in the customer's cockpit inbox (with an unread count).",
        group="Notify",
        params=[
            notify.TEMPLATE_PARAM,
            ParamSpec(name="subject", type="text", label="Title", dynamic=True),
            ParamSpec(name="body", type="text", label="Message", dynamic=True),
            notify.PURPOSE_PARAM,
        ],
        run=notify.run_in_app,
        preview=notify.preview_in_app,
        transactional=False,
        validate=notify.in_app_params_check,
    )
)
register_action(
    ActionSpec(
        name="notify.webhook",
        label="Call a webhook",
        description="POST a signed JSON message (Standard Webhooks) to an https URL with public address.",
        group="Notify",
        params=[
            ParamSpec(name="url", type="url", label="URL", required=True, check=url_check),
            ParamSpec(
                name="secret",
                type="text",
                label="Signing secret",
                required=True,
                help="whsec_<base64>; stored encrypted and never shown again",
                secret=True,
                check=secret_check,
            ),
            ParamSpec(name="event_type", type="text", label="Message type", help="Default: workflow.webhook"),
            ParamSpec(name="data", type="json", label="Extra data", help="Sent as data.fields."),
        ],
        run=run_webhook,
        preview=preview_webhook,
        transactional=False,
    )
)
