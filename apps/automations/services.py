"""
Workflow services: every write to workflows, versions and runs goes through here.

Editing an ACTIVE workflow keeps it active and running on its current (frozen) version: the edits are
saved on the workflow row and flagged `has_unpublished_changes`; activating again freezes them into a new
version. Runs already started (including waiting ones) stay on the version they started on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.platform.audit import audit_record, audit_snapshot
from loyalty_site.lib import tasks as task_queue

from .choices import RunStatus, WorkflowStatus
from .definitions import STATE_TRIGGER, DefinitionError, definition_validate, trigger_scopes
from .engine import trace_run
from .models import Workflow, WorkflowRun, WorkflowVersion
from .secret_params import definition_seal

SETTING_FIELDS = (
    "active_from",
    "active_until",
    "max_runs_per_customer",
    "max_runs_period_days",
    "min_interval_minutes",
    "holdout_percent",
    "message_priority",
    "schedule_cron",
    "audience",
)
BULK_TRIGGERS = ("customer.bulk_activity",)
REPLAYABLE = (RunStatus.DEAD, RunStatus.FAILED)


def _raise(errors: list[Any]) -> None:
    if not errors:
        return
    grouped: dict[str, list[str]] = {}
    for error in errors:
        grouped.setdefault(error.path or "__all__", []).append(error.message)
    raise ValidationError(grouped)


def _user(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _datetime(value: Any, *, path: str, errors: list[Any]) -> datetime | None:
    if value in (None, ""):
        return None
    parsed: datetime | None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = parse_datetime(value)
    else:
        parsed = None
    if parsed is None:
        errors.append(DefinitionError(path, "A date and time (ISO 8601)."))
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _positive(value: Any, *, path: str, errors: list[Any]) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, (bool, float)) or number < 1:
        errors.append(DefinitionError(path, "A whole number of at least 1 (or empty)."))
        return None
    return number


MAX_HOLDOUT_PERCENT = 50


def _holdout(value: Any, *, errors: list[Any]) -> int:
    """The holdout share: a whole percent from 0 (none) to 50; empty means 0."""
    if value in (None, ""):
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, (bool, float)) or not 0 <= number <= MAX_HOLDOUT_PERCENT:
        errors.append(DefinitionError("holdout_percent", f"A whole percent from 0 to {MAX_HOLDOUT_PERCENT}."))
        return 0
    return number


MAX_MESSAGE_PRIORITY = 100


def _priority(value: Any, *, errors: list[Any]) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        number = None
    else:
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None or not 0 <= number <= MAX_MESSAGE_PRIORITY:
        errors.append(DefinitionError("message_priority", f"A whole number from 0 to {MAX_MESSAGE_PRIORITY}."))
        return 0
    return number


def settings_clean(values: dict[str, Any], *, trigger: str) -> tuple[dict[str, Any], list[Any]]:
    """Parse and validate the workflow settings; returns (clean values, errors by path)."""
    errors: list[Any] = []
    clean: dict[str, Any] = {}
    if "active_from" in values:
        clean["active_from"] = _datetime(values["active_from"], path="active_from", errors=errors)
    if "active_until" in values:
        clean["active_until"] = _datetime(values["active_until"], path="active_until", errors=errors)
    for name in ("max_runs_per_customer", "max_runs_period_days", "min_interval_minutes"):
        if name in values:
            clean[name] = _positive(values[name], path=name, errors=errors)
    if "holdout_percent" in values:
        clean["holdout_percent"] = _holdout(values["holdout_percent"], errors=errors)
    if "message_priority" in values:
        clean["message_priority"] = _priority(values["message_priority"], errors=errors)
    if "schedule_cron" in values:
        cron = (values["schedule_cron"] or "").strip()
        if cron:
            from croniter import croniter

            if trigger not in BULK_TRIGGERS:
                errors.append(DefinitionError("schedule_cron", "Only a bulk-activity workflow has a schedule."))
            elif not croniter.is_valid(cron):
                errors.append(DefinitionError("schedule_cron", f"Not a valid cron expression: {cron!r}."))
        clean["schedule_cron"] = cron
    if "audience" in values:
        audience = values["audience"]
        if audience in ({}, ""):
            audience = None
        if audience is not None:
            from loyalty_site.lib.conditions import condition_validate

            if trigger not in BULK_TRIGGERS:
                errors.append(DefinitionError("audience", "Only a bulk-activity workflow has an audience."))
            else:
                errors += list(condition_validate(audience, path="audience", scopes=("customer",), audience=True))
        clean["audience"] = audience
    return clean, errors


def _settings_check(workflow: Workflow) -> list[Any]:
    errors: list[Any] = []
    if workflow.active_from and workflow.active_until and workflow.active_until <= workflow.active_from:
        errors.append(DefinitionError("active_until", "Must be after “active from”."))
    if workflow.max_runs_period_days and not workflow.max_runs_per_customer:
        errors.append(DefinitionError("max_runs_period_days", "Set “max runs per customer” for the period to count."))
    return errors


def _trigger_of(definition: Any) -> str:
    if isinstance(definition, dict) and isinstance(definition.get("trigger"), dict):
        event = definition["trigger"].get("event")
        return event if isinstance(event, str) else ""
    return ""


def _apply(workflow: Workflow, *, name: str | None, description: str | None, definition: Any, values: dict) -> None:
    errors: list[Any] = []
    if name is not None:
        workflow.name = name.strip()
    if not workflow.name:
        errors.append(DefinitionError("name", "A workflow needs a name."))
    elif len(workflow.name) > 200:
        errors.append(DefinitionError("name", "At most 200 characters."))
    if description is not None:
        workflow.description = description
    if definition is not None:
        definition_errors = definition_validate(definition)
        if not definition_errors:
            # Secrets are stored encrypted; a redacted one sent back keeps the stored secret.
            definition, definition_errors = definition_seal(definition, previous=workflow.definition)
        errors += definition_errors
        workflow.definition = definition
        workflow.trigger = _trigger_of(definition)
    unknown = sorted(set(values) - set(SETTING_FIELDS))
    errors += [DefinitionError(key, "Unknown setting.") for key in unknown]
    clean, setting_errors = settings_clean(values, trigger=workflow.trigger)
    errors += setting_errors
    for key, value in clean.items():
        setattr(workflow, key, value)
    if not setting_errors:
        errors += _settings_check(workflow)
    _raise(errors)


@transaction.atomic
def workflow_create(
    *,
    name: str,
    definition: dict[str, Any],
    user: Any = None,
    description: str = "",
    template: str | None = None,
    **settings: Any,
) -> Workflow:
    """
    Create a DRAFT workflow after validating the whole definition and settings (errors keyed by path);
    `template` is the gallery key it is installed from.
    """
    workflow = Workflow(created_by=_user(user), updated_by=_user(user), template=(template or "")[:64])
    _apply(workflow, name=name, description=description, definition=definition, values=settings)
    workflow.save()
    audit_record(action="created", obj=workflow, user=_user(user))
    return workflow


@transaction.atomic
def workflow_update(
    *,
    workflow: Workflow,
    user: Any = None,
    name: str | None = None,
    description: str | None = None,
    definition: dict[str, Any] | None = None,
    **settings: Any,
) -> Workflow:
    """
    Edit a workflow. An active workflow stays active on its current version; the edits are published by
    activating again (`has_unpublished_changes` tells the marketer). The trigger of a workflow with
    versions cannot change: its runs and history belong to that trigger.
    """
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    before = audit_snapshot(workflow)
    old_trigger = workflow.trigger
    _apply(workflow, name=name, description=description, definition=definition, values=settings)
    if workflow.current_version_id and workflow.trigger != old_trigger:
        _raise([DefinitionError("trigger.event", "The trigger of a published workflow cannot change; duplicate it.")])
    workflow.updated_by = _user(user)
    version = workflow.current_version if workflow.current_version_id else None
    if version is not None:
        workflow.has_unpublished_changes = (
            version.definition != workflow.definition or version.settings != workflow.settings_snapshot()
        )
    workflow.save()
    audit_record(action="updated", obj=workflow, before=before, user=_user(user))
    return workflow


@transaction.atomic
def workflow_activate(*, workflow: Workflow, user: Any = None) -> Workflow:
    """
    Activate: freeze the definition and settings into a new immutable version (unless they equal the
    current version) and make it the one new runs start on. Waiting runs of a paused workflow resume.
    """
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    errors = definition_validate(workflow.definition)
    errors += _settings_check(workflow)
    _, setting_errors = settings_clean(
        {"schedule_cron": workflow.schedule_cron, "audience": workflow.audience}, trigger=workflow.trigger
    )
    _raise(errors + setting_errors)
    before = audit_snapshot(workflow, fields=["status", "current_version"])
    version = workflow.current_version
    snapshot = workflow.settings_snapshot()
    if version is None or version.definition != workflow.definition or version.settings != snapshot:
        number = (workflow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = WorkflowVersion.objects.create(
            workflow=workflow,
            number=number,
            trigger=workflow.trigger,
            definition=workflow.definition,
            settings=snapshot,
            created_by=_user(user),
        )
    workflow.current_version = version
    workflow.status = WorkflowStatus.ACTIVE
    workflow.has_unpublished_changes = False
    workflow.updated_by = _user(user)
    if workflow.schedule_cron and workflow.next_run_at is None:
        from croniter import croniter

        workflow.next_run_at = croniter(workflow.schedule_cron, timezone.now()).get_next(datetime)
    workflow.save()
    audit_record(action="activated", obj=workflow, before=before, user=_user(user))
    if workflow.trigger == STATE_TRIGGER:
        # Existing customers get (or lose) the tag at once, set-based, after the commit.
        task_queue.enqueue_on_commit("apps.automations.tasks.state_tag_recompute", workflow.pk)
    return workflow


@transaction.atomic
def workflow_pause(*, workflow: Workflow, user: Any = None) -> Workflow:
    """Pause: no new runs start; waiting runs are held (not resumed) until the workflow is active again."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if workflow.status != WorkflowStatus.ACTIVE:
        _raise([DefinitionError("status", "Only an active workflow can be paused.")])
    workflow.status = WorkflowStatus.PAUSED
    workflow.updated_by = _user(user)
    workflow.save(update_fields=["status", "updated_by", "updated_at"])
    audit_record(
        action="paused", obj=workflow, changes={"status": {"old": "active", "new": "paused"}}, user=_user(user)
    )
    return workflow


@transaction.atomic
def workflow_delete(*, workflow: Workflow) -> None:
    """Delete a workflow that is not active (with its versions and run history)."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if workflow.status == WorkflowStatus.ACTIVE:
        _raise([DefinitionError("status", "Pause the workflow before deleting it.")])
    audit_record(action="deleted", obj=workflow, before=audit_snapshot(workflow))
    WorkflowRun.objects.filter(workflow=workflow).delete()
    Workflow.objects.filter(pk=workflow.pk).update(current_version=None)
    workflow.delete()


def workflow_test(
    *,
    customer: Any,
    workflow: Workflow | None = None,
    definition: dict[str, Any] | None = None,
    subject: Any = None,
    event: Any = None,
    order: Any = None,
    cart: Any = None,
    draft_order: Any = None,
    custom_event: Any = None,
) -> dict[str, Any]:
    """
    Evaluate a workflow (or an unsaved definition) for one customer, step by step, WITHOUT side effects:
    nothing is written, actions report what they would do. `subject` is the id of the trigger's object
    (order, cart, draft order, custom event) when the trigger has one; the customer's latest is used
    otherwise. Returns the trace {"trigger": ..., "steps": [...], "errors": [...]}.
    """
    if definition is None:
        if workflow is None:
            raise ValidationError({"definition": "Give a workflow or a definition."})
        definition = workflow.definition
    _raise(definition_validate(definition))
    return trace_run(
        definition=definition,
        customer=customer,
        subject=subject,
        event=event,
        workflow_id=workflow.pk if workflow is not None else None,
        order=order,
        cart=cart,
        draft_order=draft_order,
        custom_event=custom_event,
    )


@transaction.atomic
def run_replay(*, run: WorkflowRun, user: Any = None) -> WorkflowRun:
    """Queue a dead (or failed) run again with a fresh attempt budget; it resumes where it stopped."""
    run = WorkflowRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in REPLAYABLE:
        raise ValidationError({"status": f"Only a dead or failed run can be replayed (this one is {run.status})."})
    run.status = RunStatus.PENDING
    run.attempts = 0
    run.next_attempt_at = None
    run.finished_at = None
    run.error = ""
    run.save(update_fields=["status", "attempts", "next_attempt_at", "finished_at", "error", "updated_at"])
    task_queue.enqueue_on_commit("apps.automations.tasks.run_execute", run.pk)
    return run


def runs_prune(*, days: int | None = None, now: datetime | None = None) -> int:
    """Delete finished runs (and their steps) older than the retention; returns how many runs went."""
    days = days if days is not None else django_settings.AUTOMATIONS_RUN_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    finished = (RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.FAILED, RunStatus.DEAD)
    deleted = 0
    while True:
        ids = list(
            WorkflowRun.objects.filter(status__in=finished, created_at__lt=cutoff).values_list("pk", flat=True)[:1000]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            WorkflowRun.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


__all__ = [
    "definition_validate",
    "run_replay",
    "runs_prune",
    "trigger_scopes",
    "workflow_activate",
    "workflow_create",
    "workflow_delete",
    "workflow_pause",
    "workflow_test",
    "workflow_update",
]
