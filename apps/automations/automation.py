"""What the engine itself offers: the notify.* actions (e-mail, signed webhook)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from .definitions import STATE_TRIGGER
from .registry import ActionRefused, ActionSpec, ParamSpec, TriggerSpec, register_action, register_trigger
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


def _recipient(context: Any, params: dict[str, Any]) -> str:
    to = str(params.get("to") or "").strip() or getattr(context.customer, "email", "")
    if not to:
        raise ActionRefused("The customer has no e-mail address and no recipient is set.")
    return to


def run_email(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
    """Send one e-mail through Django's mail backend (console in development)."""
    to = _recipient(context, params)
    subject = str(params.get("subject") or "")
    send_mail(subject, str(params.get("body") or ""), settings.DEFAULT_FROM_EMAIL, [to])
    return {"to": to, "subject": subject}


def preview_email(context: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"would_email": _recipient(context, params), "subject": params.get("subject"), "body": params.get("body")}


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
    return webhook_send(
        url=str(params["url"]),
        secret=secret_reveal(params["secret"]),
        message_id=_message_id(effect_key),
        payload=payload,
    )


def preview_webhook(context: Any, params: dict[str, Any]) -> dict[str, Any]:
    target = target_resolve(str(params["url"]))
    return {"would_post_to": params["url"], "address": target.address}


register_action(
    ActionSpec(
        name="notify.email",
        label="Send an e-mail",
        description="E-mail the customer (or a fixed address) through the site's mail backend.",
        group="Notify",
        params=[
            ParamSpec(name="to", type="email", label="To", help="Empty: the customer's address.", dynamic=True),
            ParamSpec(name="subject", type="text", label="Subject", required=True, dynamic=True),
            ParamSpec(name="body", type="text", label="Body", required=True, dynamic=True),
        ],
        run=run_email,
        preview=preview_email,
        transactional=False,
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
