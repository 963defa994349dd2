"""The JSON the builder page boots from: the catalog, triggers and actions as the front-end needs them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.automations.secret_params import definition_redact
from apps.automations.selectors import state_tag_summary, waiting_runs_by_version
from loyalty_site.lib.conditions.editor import choices_payload, editor_catalog

# Which object a test run needs besides the customer, by trigger scope.
SUBJECT_BY_SCOPE = {"order": "order", "cart": "cart", "draft_order": "draft order", "event": "event"}

SETTINGS_SCHEMA: list[dict[str, Any]] = [
    {"name": "active_from", "label": "Active from", "type": "datetime", "help": "Empty: from activation."},
    {"name": "active_until", "label": "Active until", "type": "datetime", "help": "Empty: no end."},
    {
        "name": "max_runs_per_customer",
        "label": "Max runs per customer",
        "type": "int",
        "help": "Empty: unlimited. 1 = only once per customer.",
        "placeholder": "unlimited",
    },
    {
        "name": "max_runs_period_days",
        "label": "… per period of (days)",
        "type": "int",
        "help": "Empty: the limit counts for ever.",
        "placeholder": "ever",
    },
    {
        "name": "min_interval_minutes",
        "label": "Minimum time between runs (minutes)",
        "type": "int",
        "help": "For the same customer.",
        "placeholder": "none",
    },
    {
        "name": "holdout_percent",
        "label": "Holdout (% left out)",
        "type": "int",
        "help": "A stable random share of customers (0-50 %) that gets nothing, recorded as held out, to measure lift.",
        "placeholder": "0",
    },
    {
        "name": "message_priority",
        "label": "Message priority",
        "type": "int",
        "help": "0-100. Two workflows messaging a customer at once: the higher one sends, the other is suppressed.",
        "placeholder": "0",
    },
    {
        "name": "schedule_cron",
        "label": "Schedule (cron, UTC)",
        "type": "text",
        "help": "e.g. 0 3 * * * = every day at 03:00. Empty: run it by hand only.",
        "placeholder": "0 3 * * *",
        "bulk_only": True,
    },
    {"name": "audience", "label": "Audience", "type": "condition", "bulk_only": True},
]
SETTING_NAMES = [setting["name"] for setting in SETTINGS_SCHEMA]

BULK_TRIGGERS = {"customer.bulk_activity"}

PARAM_TYPES = {
    "text": "string",
    "text_list": "strings",
    "number": "decimal",
    "integer": "integer",
    "boolean": "boolean",
    "choice": "string",
    "json": "json",
    "url": "string",
    "email": "string",
}


def trigger_payload(spec: Any) -> dict[str, Any]:
    scopes = list(getattr(spec, "scopes", ()) or ("customer",))
    subject = next((SUBJECT_BY_SCOPE[scope] for scope in scopes if scope in SUBJECT_BY_SCOPE), None)
    return {
        "name": spec.name,
        "label": spec.label,
        "description": getattr(spec, "description", ""),
        "group": getattr(spec, "group", "") or "Other",
        "objects": scopes,
        "subject": subject,
        "bulk": spec.name in BULK_TRIGGERS,
    }


def param_payload(spec: Any) -> dict[str, Any]:
    kind = getattr(spec, "type", "text")
    name = spec.name
    return {
        "name": name,
        "label": getattr(spec, "label", "") or name.replace("_", " ").capitalize(),
        "type": "tags" if kind == "text_list" and "tag" in name else PARAM_TYPES.get(kind, "string"),
        "input": kind,
        "required": bool(getattr(spec, "required", False)),
        "help": getattr(spec, "help", ""),
        "choices": choices_payload(getattr(spec, "choices", ())),
        "dynamic": bool(getattr(spec, "dynamic", kind in {"text", "text_list"})),
        "default": getattr(spec, "default", None),
    }


# The notify.* actions' `template` param is a picker of the published message templates of the action's channel.
TEMPLATE_PARAM_CHANNELS = {"notify.email": "email", "notify.sms": "sms", "notify.in_app": "in_app"}


def template_param_payload(param: dict[str, Any], channel: str, templates: dict[str, list[Any]]) -> dict[str, Any]:
    choices = templates.get(channel, [])
    return {
        **param,
        "type": "string",
        "dynamic": False,
        "choices": [{"value": template.key, "label": f"{template.name} ({template.key})"} for template in choices],
        "help": param.get("help") or "A published message template; leave empty to write the subject and body here.",
    }


def action_payload(spec: Any, templates: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    params = [param_payload(param) for param in getattr(spec, "params", ())]
    channel = TEMPLATE_PARAM_CHANNELS.get(spec.name)
    if channel is not None and templates is not None:
        params = [
            template_param_payload(param, channel, templates) if param["name"] == "template" else param
            for param in params
        ]
    return {
        "name": spec.name,
        "label": spec.label,
        "description": getattr(spec, "description", ""),
        "group": getattr(spec, "group", "") or spec.name.split(".")[0].capitalize(),
        "params": params,
    }


def published_templates_by_channel() -> dict[str, list[Any]]:
    """The published message templates by channel (one query), for the `template` pickers."""
    from apps.customers.messaging.templating.selectors import templates_published

    by_channel: dict[str, list[Any]] = {}
    for template in templates_published():
        by_channel.setdefault(template.channel, []).append(template)
    return by_channel


def triggers_payload() -> list[dict[str, Any]]:
    from apps.automations.registry import triggers_all

    return [trigger_payload(spec) for spec in triggers_all()]


def trigger_lookup(name: str) -> dict[str, Any] | None:
    from apps.automations.registry import trigger_get

    spec = trigger_get(name)
    return trigger_payload(spec) if spec else None


def catalog_payload() -> dict[str, Any]:
    from apps.automations.registry import actions_all

    actions = actions_all()
    templates = (
        published_templates_by_channel()
        if any(spec.name in TEMPLATE_PARAM_CHANNELS and spec.param("template") for spec in actions)
        else None
    )
    return {
        # The fields and the operator table of the condition language, as every condition editor reads them.
        **editor_catalog(),
        "triggers": triggers_payload(),
        "actions": [action_payload(spec, templates) for spec in actions],
    }


def workflow_settings(workflow: Any) -> dict[str, Any]:
    values = {}
    for name in SETTING_NAMES:
        value: Any = getattr(workflow, name, None)
        values[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return values


def urls_payload() -> dict[str, str]:
    return {
        "save_new": reverse("automations:builder_save_new"),
        "activate": reverse("automations:builder_activate", args=[0]),
        "pause": reverse("automations:builder_pause", args=[0]),
        "state": reverse("automations:builder_state", args=[0]),
        "run": reverse("automations:builder_run_now", args=[0]),
        "test": reverse("automations:builder_test"),
        "customers": reverse("automations:customer_search"),
        "subjects": reverse("automations:test_subjects"),
    }


def error_list(error: Exception) -> list[dict[str, str]]:
    """A ValidationError (keyed by JSON path or not) or a domain error as [{"path", "message"}]."""
    if isinstance(error, ValidationError):
        if hasattr(error, "error_dict"):
            return [
                {"path": "" if path == "__all__" else path, "message": message}
                for path, messages in error.message_dict.items()
                for message in messages
            ]
        return [{"path": "", "message": message} for message in error.messages]
    message = getattr(error, "message", None) or str(error)
    return [{"path": getattr(error, "path", "") or "", "message": str(message)}]


def workflow_payload(workflow: Any) -> dict[str, Any]:
    """The workflow as the builder edits it (secrets redacted), with its waiting runs of the live version."""
    version = getattr(workflow, "current_version", None)
    waiting = waiting_runs_by_version(workflow=workflow).get(version.number, 0) if version else 0
    return {
        "id": workflow.pk,
        "name": workflow.name,
        "description": workflow.description,
        "status": workflow.status,
        "version": version.number if version else None,
        "has_draft": bool(getattr(workflow, "has_unpublished_changes", False)),
        "bulk": workflow.trigger in BULK_TRIGGERS,
        "definition": definition_redact(workflow.definition),
        "settings": workflow_settings(workflow),
        "waiting_runs": waiting,
        # A state tag's tag, group, rank and how many customers carry it now (None for other kinds).
        "state": state_tag_summary(workflow) if workflow.pk else None,
    }


def version_settings(version: Any) -> dict[str, Any]:
    stored = getattr(version, "settings", None) or {}
    return {name: stored.get(name) for name in SETTING_NAMES}
