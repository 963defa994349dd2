"""
The builder's one doorway into the engine: every call the pages make to the engine's models, selectors and
services goes through here, so the pages read the same whatever the engine's internals look like.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from apps.automations.builder import boot as boot_data
from apps.automations.choices import RunStatus
from apps.automations.secret_params import definition_redact

RUNS_RELATED_NAME = "runs"


def models():
    from apps.automations import models as automation_models

    return automation_models


def services():
    from apps.automations import services as automation_services

    return automation_services


def error_list(error: Exception) -> list[dict[str, str]]:
    """A ValidationError (keyed by JSON path or not) as [{"path", "message"}]."""
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


def waiting_runs(workflow: Any) -> int:
    version = getattr(workflow, "current_version", None)
    if version is None:
        return 0
    return models().WorkflowRun.objects.filter(workflow=workflow, version=version, status=RunStatus.WAITING).count()


def waiting_by_version(workflow: Any) -> dict[int, int]:
    from django.db.models import Count

    rows = (
        models()
        .WorkflowRun.objects.filter(workflow=workflow, status=RunStatus.WAITING)
        .values("version_id")
        .annotate(n=Count("pk"))
    )
    return {row["version_id"]: row["n"] for row in rows}


def workflow_payload(workflow: Any) -> dict[str, Any]:
    version = getattr(workflow, "current_version", None)
    return {
        "id": workflow.pk,
        "name": workflow.name,
        "description": workflow.description,
        "status": workflow.status,
        "version": version.number if version else None,
        "has_draft": bool(getattr(workflow, "has_unpublished_changes", False)),
        "bulk": workflow.trigger in boot_data.BULK_TRIGGERS,
        "definition": definition_redact(workflow.definition),
        "settings": boot_data.workflow_settings(workflow),
        "waiting_runs": waiting_runs(workflow),
    }


def version_settings(version: Any) -> dict[str, Any]:
    stored = getattr(version, "settings", None) or {}
    return {name: stored.get(name) for name in boot_data.SETTING_NAMES}


def create(*, user: Any, **fields: Any) -> Any:
    return services().workflow_create(user=user, **fields)


def update(*, workflow: Any, user: Any, **fields: Any) -> Any:
    return services().workflow_update(workflow=workflow, user=user, **fields)


def activate(*, workflow: Any, user: Any) -> Any:
    return services().workflow_activate(workflow=workflow, user=user)


def pause(*, workflow: Any, user: Any) -> Any:
    return services().workflow_pause(workflow=workflow, user=user)


def run_now(*, workflow: Any, user: Any) -> Any:
    from apps.automations import bulk

    return bulk.bulk_run_start(workflow=workflow, user=user)


def replay(*, run: Any, user: Any) -> Any:
    return services().run_replay(run=run, user=user)


def test(*, definition: dict, settings: dict, customer: Any, subject: Any) -> dict[str, Any]:
    """Evaluate the definition on screen for one customer (no side effects) -> the trace the page draws."""
    raw = services().workflow_test(definition=definition, customer=customer, subject=subject)
    return trace_payload(raw)


def trace_payload(raw: Any) -> dict[str, Any]:
    return raw


def install_template(*, key: str, params: dict[str, Any], name: str, user: Any) -> Any:
    from apps.automations import gallery

    return gallery.template_install(key=key, params=params, user=user, name=name or None)
