"""
The workflow executor.

`domain_event_process` takes one outbox row (customers.DomainEvent), opens one run per active workflow
listening to its trigger (unique per workflow x event x customer, so a re-delivered task opens nothing
new), records why a run is skipped (filter false, outside the active window, run limits, loop guard,
chain depth), executes the admitted runs and marks the event processed.

`run_execute` claims a run (attempts are counted on the run row: django-q2 re-delivers a task whose
worker died without counting it), walks its version's steps from `resume_step`, writes one step row
per step, parks the run on a `wait`, schedules a retry with backoff on a transient action failure and
ends `dead` when attempts run out. Actions go through the ActionEffect ledger: an effect recorded done is
never repeated.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.customers import outbox
from apps.customers.choices import DomainEventStatus
from apps.customers.models import DomainEvent, DomainEventReceipt
from loyalty_site.lib import tasks as task_queue

from . import registry
from .choices import EffectStatus, RunKind, RunStatus, StepKind, StepStatus, WorkflowStatus
from .definitions import WAIT_UNITS
from .models import ActionEffect, Workflow, WorkflowRun, WorkflowRunStep
from .signals import CONSUMER

logger = logging.getLogger(__name__)

# A pending run nobody picked up for this long is re-enqueued by `runs_retry_due`.
PENDING_GRACE = timedelta(minutes=1)
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
ERROR_MAX = 2000
CAUSE_PREFIX = "workflow_run:"


@dataclass
class Wait:
    path: str
    resume_at: datetime


class _Resume:
    """Where a resumed/retried run picks up: the path of the wait it sat on or the action that failed."""

    def __init__(self, path: str) -> None:
        self.path = path or None


# --- Context -------------------------------------------------------------------------------------------


def _model(app_label: str, name: str):
    from django.apps import apps

    return apps.get_model(app_label, name)


def _fetch(app_label: str, name: str, pk: Any) -> Any:
    if pk in (None, ""):
        return None
    return _model(app_label, name).objects.filter(pk=pk).first()


def context_build(
    *,
    customer: Any,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
    **objects: Any,
) -> Any:
    """An EvaluationContext re-read from the database (conditions after a wait see fresh data)."""
    from loyalty_site.lib.conditions import EvaluationContext

    payload = payload or {}
    order = objects.get("order") or _fetch("customers", "Order", payload.get("order_id"))
    line = objects.get("line") or _fetch("customers", "OrderLine", payload.get("line_id"))
    product = objects.get("product") or _fetch("customers", "Product", payload.get("product_id"))
    cart = objects.get("cart") or _fetch("customers", "Cart", payload.get("cart_id"))
    draft_order = objects.get("draft_order") or _fetch("customers", "DraftOrder", payload.get("draft_order_id"))
    custom_event = objects.get("custom_event") or _fetch("customers", "CustomerEvent", payload.get("custom_event_id"))
    store = objects.get("store") or _fetch("customers", "Store", payload.get("store_id"))
    location = None
    if "latitude" in payload:
        location = {key: payload.get(key) for key in ("latitude", "longitude", "distance_m")}
    merged = {"payload": payload, **(extra or {})}
    return EvaluationContext(
        customer=customer,
        now=now or timezone.now(),
        order=order,
        line=line,
        product=product,
        cart=cart,
        draft_order=draft_order,
        custom_event=custom_event,
        store=store,
        location=location,
        extra=merged,
        tag=objects.get("tag") or payload.get("tag"),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _evaluate(condition: Any, context: Any) -> tuple[bool, Any]:
    from loyalty_site.lib.conditions import condition_evaluate

    evaluation = condition_evaluate(condition, context)
    return bool(evaluation.result), _jsonable(getattr(evaluation, "values", {}))


# --- Dynamic parameters ----------------------------------------------------------------------------------


def params_render(spec: registry.ActionSpec, params: dict[str, Any], context: Any) -> dict[str, Any]:
    """Render {{ dynamic parameters }}; in a text_list a list-valued variable expands to several items."""
    from loyalty_site.lib.conditions.templating import template_render

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


# --- Opening runs ----------------------------------------------------------------------------------------


def _parent_run(cause: str) -> WorkflowRun | None:
    if not cause.startswith(CAUSE_PREFIX):
        return None
    try:
        pk = int(cause[len(CAUSE_PREFIX) :])
    except ValueError:
        return None
    return WorkflowRun.objects.filter(pk=pk).only("pk", "workflow_id", "customer_id", "depth").first()


def _limits_reason(workflow: Workflow, settings: dict[str, Any], customer_id: int | None, now: datetime) -> str:
    if customer_id is None:
        return ""
    counted = WorkflowRun.objects.filter(workflow=workflow, customer_id=customer_id, kind=RunKind.EVENT).exclude(
        status=RunStatus.SKIPPED
    )
    limit = settings.get("max_runs_per_customer")
    if limit:
        period = settings.get("max_runs_period_days")
        scope = counted.filter(created_at__gt=now - timedelta(days=period)) if period else counted
        if scope.count() >= limit:
            window = f" in {period} days" if period else ""
            return f"per-customer limit reached ({limit} run{'s' if limit != 1 else ''}{window})"
    interval = settings.get("min_interval_minutes")
    if interval and counted.filter(created_at__gt=now - timedelta(minutes=interval)).exists():
        return f"minimum interval not elapsed ({interval} minutes since the last run)"
    return ""


def _window_reason(settings: dict[str, Any], now: datetime) -> str:
    from django.utils.dateparse import parse_datetime

    start = parse_datetime(settings["active_from"]) if settings.get("active_from") else None
    end = parse_datetime(settings["active_until"]) if settings.get("active_until") else None
    if start and now < start:
        return f"outside the active window (starts {start.isoformat()})"
    if end and now >= end:
        return f"outside the active window (ended {end.isoformat()})"
    return ""


def _step_record(run: WorkflowRun, path: str, **fields: Any) -> WorkflowRunStep:
    """Write the step row; a re-executed step (retry, resume, re-delivery) updates its row."""
    fields.setdefault("finished_at", timezone.now())
    known = getattr(run, "step_paths", None)
    if known is not None and path not in known:
        known.add(path)
        return WorkflowRunStep.objects.create(run=run, path=path, **fields)
    step, _ = WorkflowRunStep.objects.update_or_create(run=run, path=path, defaults=fields)
    if known is not None:
        known.add(path)
    return step


def _run_open(*, workflow: Workflow, event: Any, parent: WorkflowRun | None, now: datetime) -> WorkflowRun | None:
    """
    Create this workflow's run for the event: claimed (running, attempt 1) or skipped with its reason;
    None if it exists already.
    """
    version = workflow.current_version
    settings = version.settings or {}
    depth = parent.depth + 1 if parent else 0
    customer = event.customer
    trigger_outcome: dict[str, Any] = {}
    context = None
    reason = _window_reason(settings, now)
    if not reason:
        where = (version.definition.get("trigger") or {}).get("where")
        if where:
            context = context_build(customer=customer, payload=event.payload, now=now)
            passed, values = _evaluate(where, context)
            trigger_outcome = {"where": passed, "values": values}
            if not passed:
                reason = "trigger filter is false"
    max_depth = django_settings.AUTOMATIONS_MAX_CHAIN_DEPTH
    if reason:
        pass
    elif depth > max_depth:
        reason = f"chain depth limit reached ({max_depth}) — started by run #{parent.pk}"
    elif parent and parent.workflow_id == workflow.pk and parent.customer_id == event.customer_id:
        reason = f"loop guard: triggered by this workflow's own run #{parent.pk} for the same customer"
    with transaction.atomic():
        if not reason and (settings.get("max_runs_per_customer") or settings.get("min_interval_minutes")):
            # Serialise the limit check per customer so two events at once cannot both pass it.
            if customer is not None:
                type(customer).objects.select_for_update().filter(pk=customer.pk).first()
            reason = _limits_reason(workflow, settings, event.customer_id, now)
        try:
            with transaction.atomic():
                run = WorkflowRun.objects.create(
                    workflow=workflow,
                    version=version,
                    kind=RunKind.EVENT,
                    trigger_event=event,
                    customer=customer,
                    # An admitted run is claimed by this worker at once (attempt 1); if the worker
                    # dies, runs_retry_due finds it "running" past the task timeout.
                    status=RunStatus.SKIPPED if reason else RunStatus.RUNNING,
                    attempts=0 if reason else 1,
                    started_at=None if reason else now,
                    skip_reason=reason[:255],
                    depth=depth,
                    context={"event_id": event.pk, "event": event.name, "payload": event.payload},
                    finished_at=now if reason else None,
                )
        except IntegrityError:
            return None
        run.step_paths = set()
        run.fresh = not reason
        run.opened_context = context
        _step_record(
            run,
            "trigger",
            step_id="trigger",
            kind=StepKind.TRIGGER,
            status=StepStatus.SKIPPED if reason else StepStatus.SUCCEEDED,
            inputs={"event": event.name, "event_id": event.pk, "payload": _jsonable(event.payload)},
            outcome={**trigger_outcome, **({"skip_reason": reason} if reason else {})},
            started_at=now,
        )
    return run


def _run_open_failed(*, workflow: Workflow, event: Any, now: datetime, error: Exception) -> None:
    """Record a failed run (with the error) so the event can still be marked processed."""
    try:
        with transaction.atomic():
            WorkflowRun.objects.get_or_create(
                workflow=workflow,
                trigger_event=event,
                customer=event.customer,
                defaults={
                    "version": workflow.current_version,
                    "kind": RunKind.EVENT,
                    "status": RunStatus.FAILED,
                    "error": f"{type(error).__name__}: {error}"[:ERROR_MAX],
                    "context": {"event_id": event.pk, "event": event.name, "payload": event.payload},
                    "finished_at": now,
                },
            )
    except IntegrityError:
        pass


def domain_event_process(*, event_id: int) -> list[int]:
    """Open and execute the runs of every active workflow for this event; returns the opened run ids."""
    event = (
        DomainEvent.objects.select_related("customer")
        .annotate(consumed=Exists(DomainEventReceipt.objects.filter(event=OuterRef("pk"), consumer=CONSUMER)))
        .filter(pk=event_id)
        .first()
    )
    if event is None or event.status == DomainEventStatus.PROCESSED or event.consumed:
        return []
    now = timezone.now()
    workflows = Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE, current_version__isnull=False, current_version__trigger=event.name
    ).select_related("current_version")
    parent = _parent_run(event.cause or "")
    opened: list[WorkflowRun] = []
    redelivered = False
    for workflow in workflows:
        try:
            run = _run_open(workflow=workflow, event=event, parent=parent, now=now)
        except Exception as error:  # e.g. a trigger filter that cannot be evaluated: never a poison event
            logger.warning("workflow %s cannot open a run for event %s: %s", workflow.pk, event.pk, error)
            _run_open_failed(workflow=workflow, event=event, now=now, error=error)
            continue
        if run is None:
            redelivered = True  # this event's run exists already: a re-delivered task
        else:
            opened.append(run)
    if redelivered:
        pending = list(
            WorkflowRun.objects.filter(trigger_event=event, status=RunStatus.PENDING).values_list("pk", flat=True)
        )
        for run_id in pending:
            run_execute(run_id=run_id)
    for run in opened:
        if run.status == RunStatus.RUNNING:
            _run_steps(run, now=now, context=run.opened_context)
    outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
    return [run.pk for run in opened]


# --- Executing runs --------------------------------------------------------------------------------------


def _stale_after() -> timedelta:
    q_cluster = getattr(django_settings, "Q_CLUSTER", {})
    return timedelta(seconds=int(q_cluster.get("timeout", 120)) + 10)


def _claim(run_id: int, now: datetime) -> WorkflowRun | None:
    with transaction.atomic():
        run = (
            WorkflowRun.objects.select_for_update(of=("self",))
            .select_related("version", "customer", "workflow")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.kind != RunKind.EVENT:
            return None
        if run.status == RunStatus.RUNNING and run.updated_at > now - _stale_after():
            return None  # another worker is on it
        if run.status not in (RunStatus.PENDING, RunStatus.RUNNING):
            return None
        run.attempts += 1
        if run.attempts > run.max_attempts:
            run.status = RunStatus.DEAD
            run.error = (run.error or "attempts exhausted (the worker may have died)")[:ERROR_MAX]
            run.finished_at = now
            run.save(update_fields=["status", "attempts", "error", "finished_at", "updated_at"])
            return None
        # A run that never started has no step rows (but its trigger's) and no effects yet.
        run.fresh = run.started_at is None
        run.step_paths = {"trigger"} if run.fresh else None
        run.status = RunStatus.RUNNING
        run.started_at = run.started_at or now
        run.next_attempt_at = None
        run.save(update_fields=["status", "attempts", "started_at", "next_attempt_at", "updated_at"])
    return run


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def run_execute(*, run_id: int) -> str | None:
    """Execute (or resume, or retry) one event run; returns its final status for this attempt."""
    now = timezone.now()
    run = _claim(run_id, now)
    if run is None:
        return None
    if run.step_paths is None:
        run.step_paths = set(run.steps.values_list("path", flat=True))
    return _run_steps(run, now=now)


def _run_steps(run: WorkflowRun, *, now: datetime, context: Any = None) -> str:
    """Walk a claimed run's steps from its resume point and record how the attempt ended."""
    extra = {"run_id": run.pk, "cause": run.cause, "workflow_id": run.workflow_id}
    if context is None:
        context = context_build(customer=run.customer, payload=(run.context or {}).get("payload"), now=now)
    context.extra.update(extra)
    try:
        outcome = _walk(run, run.version.definition.get("steps") or [], "steps", context, _Resume(run.resume_step))
    except registry.TransientActionError as error:
        return _retry_or_dead(run, error)
    except Exception as error:  # a permanent failure: the run fails, its error is kept
        logger.warning("workflow run %s failed: %s", run.pk, error)
        run.resume_step = getattr(error, "step_path", "") or run.resume_step
        return _finish(run, RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
    if isinstance(outcome, Wait):
        WorkflowRun.objects.filter(pk=run.pk).update(
            status=RunStatus.WAITING, resume_at=outcome.resume_at, resume_step=outcome.path, updated_at=timezone.now()
        )
        return RunStatus.WAITING
    return _finish(run, RunStatus.SUCCEEDED)


def _finish(run: WorkflowRun, status: str, *, error: str = "") -> str:
    WorkflowRun.objects.filter(pk=run.pk).update(
        status=status,
        error=error[:ERROR_MAX],
        resume_step="" if status == RunStatus.SUCCEEDED else run.resume_step,
        resume_at=None,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return status


def _retry_or_dead(run: WorkflowRun, error: Exception) -> str:
    message = f"{type(error).__name__}: {error}"[:ERROR_MAX]
    path = getattr(error, "step_path", "") or run.resume_step
    if run.attempts >= run.max_attempts:
        WorkflowRun.objects.filter(pk=run.pk).update(
            status=RunStatus.DEAD,
            error=message,
            resume_step=path,
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        return RunStatus.DEAD
    WorkflowRun.objects.filter(pk=run.pk).update(
        status=RunStatus.PENDING,
        error=message,
        resume_step=path,
        next_attempt_at=timezone.now() + backoff(run.attempts),
        updated_at=timezone.now(),
    )
    return RunStatus.PENDING


def _walk(run: WorkflowRun, steps: list, prefix: str, context: Any, resume: _Resume) -> Wait | None:
    for index, step in enumerate(steps):
        path = f"{prefix}[{index}]"
        if resume.path:
            if resume.path == path:
                resume.path = None
                if "wait" in step:
                    _step_record(run, path, step_id=step.get("id", ""), kind=StepKind.WAIT, status=StepStatus.SUCCEEDED)
                    continue
            elif resume.path.startswith(path + "."):
                branch = resume.path[len(path) + 1 :].split("[", 1)[0]
                parked = _walk(run, step.get(branch) or [], f"{path}.{branch}", context, resume)
                if parked:
                    return parked
                continue
            else:
                continue  # done before the wait / the failed action
        parked = _step_execute(run, step, path, context, resume)
        if parked:
            return parked
    return None


def _step_execute(run: WorkflowRun, step: dict, path: str, context: Any, resume: _Resume) -> Wait | None:
    started = timezone.now()
    step_id = step.get("id", "")
    if "if" in step:
        passed, values = _evaluate(step["if"], context)
        branch = "then" if passed else "else"
        _step_record(
            run,
            path,
            step_id=step_id,
            kind=StepKind.CONDITION,
            status=StepStatus.SUCCEEDED,
            branch=branch,
            inputs={"condition": step["if"]},
            outcome={"result": passed, "values": values},
            started_at=started,
        )
        return _walk(run, step.get(branch) or [], f"{path}.{branch}", context, resume)
    if "wait" in step:
        resume_at = wait_until(step["wait"], started)
        _step_record(
            run,
            path,
            step_id=step_id,
            kind=StepKind.WAIT,
            status=StepStatus.WAITING,
            inputs={"wait": step["wait"]},
            outcome={"resume_at": resume_at.isoformat()},
            started_at=started,
            finished_at=None,
        )
        return Wait(path, resume_at)
    _action_execute(run, step, path, context)
    return None


def _effect_key(run: WorkflowRun, path: str) -> str:
    key = f"wr{run.pk}:{path}"
    if len(key) <= 100:
        return key
    return f"wr{run.pk}:{hashlib.sha256(path.encode()).hexdigest()[:40]}"


def _action_execute(run: WorkflowRun, step: dict, path: str, context: Any) -> None:
    started = timezone.now()
    spec = registry.action_get(step["action"])
    if spec is None or spec.run is None:
        raise registry.ActionRefused(f"unknown action {step['action']!r}")
    params = params_render(spec, step.get("params") or {}, context)
    key = _effect_key(run, path)
    common = {
        "step_id": step.get("id", ""),
        "kind": StepKind.ACTION,
        "inputs": {"action": spec.name, "params": _jsonable(params)},
    }
    try:
        if spec.transactional:
            # The effect, its ledger row and its step row commit together: exactly once.
            with transaction.atomic():
                _action_apply(run, spec, path, key, params, context, started, common)
        else:
            _action_apply(run, spec, path, key, params, context, started, common)
    except registry.TransientActionError as error:
        _step_record(
            run, path, status=StepStatus.FAILED, error=f"transient: {error}"[:ERROR_MAX], started_at=started, **common
        )
        error.step_path = path  # type: ignore[attr-defined]
        raise
    except Exception as error:
        _step_record(
            run,
            path,
            status=StepStatus.FAILED,
            error=f"{type(error).__name__}: {error}"[:ERROR_MAX],
            started_at=started,
            **common,
        )
        error.step_path = path  # type: ignore[attr-defined]
        raise


def _action_apply(
    run: WorkflowRun,
    spec: registry.ActionSpec,
    path: str,
    key: str,
    params: dict[str, Any],
    context: Any,
    started: datetime,
    common: dict[str, Any],
) -> None:
    if getattr(run, "fresh", False):  # a run's first execution has no effects yet
        effect = ActionEffect.objects.create(run=run, path=path, key=key, action=spec.name)
    else:
        effect, _ = ActionEffect.objects.get_or_create(
            run=run, path=path, defaults={"key": key, "action": spec.name, "status": EffectStatus.STARTED}
        )
    if effect.status == EffectStatus.DONE:
        outcome = {**effect.outcome, "already_done": True}
    else:
        outcome = _jsonable(spec.run(context, params, key) or {})
        ActionEffect.objects.filter(pk=effect.pk).update(
            status=EffectStatus.DONE, outcome=outcome, finished_at=timezone.now()
        )
    _step_record(run, path, status=StepStatus.SUCCEEDED, outcome=outcome, error="", started_at=started, **common)


# --- Waits ------------------------------------------------------------------------------------------------


def wait_until(wait: dict[str, Any], now: datetime) -> datetime:
    """When a wait started at `now` ends: after a duration, or at the next HH:MM (local time) on the weekdays."""
    for unit, minutes in WAIT_UNITS.items():
        if unit in wait:
            return now + timedelta(minutes=int(wait[unit]) * minutes)
    hour, minute = (int(part) for part in wait["until_time"].split(":"))
    weekdays = set(wait.get("weekdays") or range(7))
    local = timezone.localtime(now)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        candidate = timezone.make_aware(datetime.combine(day, time(hour, minute)), local.tzinfo)
        if candidate > local and day.weekday() in weekdays:
            return candidate
    raise ValueError("no matching weekday")  # unreachable: weekdays is non-empty


# --- Periodic jobs -----------------------------------------------------------------------------------------


def runs_retry_due(*, now: datetime | None = None) -> int:
    """Enqueue runs whose retry time came, pending runs never picked up, and runs whose worker died."""
    now = now or timezone.now()
    due = WorkflowRun.objects.filter(kind=RunKind.EVENT).filter(
        Q(status=RunStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=RunStatus.PENDING, next_attempt_at__isnull=True, updated_at__lt=now - PENDING_GRACE)
        | Q(status=RunStatus.RUNNING, updated_at__lt=now - _stale_after())
    )
    ids = list(due.order_by("pk").values_list("pk", flat=True)[:5000])
    for run_id in ids:
        task_queue.enqueue_on_commit("apps.automations.tasks.run_execute", run_id)
    return len(ids)


def runs_resume_due(*, now: datetime | None = None) -> int:
    """Resume waiting runs whose time came, unless their workflow is paused (held until re-activated)."""
    now = now or timezone.now()
    ids = list(
        WorkflowRun.objects.filter(
            status=RunStatus.WAITING, resume_at__lte=now, workflow__status=WorkflowStatus.ACTIVE
        ).values_list("pk", flat=True)[:5000]
    )
    resumed = 0
    for run_id in ids:
        # Claim waiting -> pending atomically so two sweeps never resume a run twice.
        if WorkflowRun.objects.filter(pk=run_id, status=RunStatus.WAITING).update(
            status=RunStatus.PENDING, attempts=0, updated_at=now
        ):
            task_queue.enqueue_on_commit("apps.automations.tasks.run_execute", run_id)
            resumed += 1
    return resumed


# --- Test runs (no side effects) ---------------------------------------------------------------------------


SUBJECT_FIELDS = {
    "order": ("customers", "Order", "order", "placed_at"),
    "cart": ("customers", "Cart", "cart", "updated_at"),
    "draft_order": ("customers", "DraftOrder", "draft_order", "created_at"),
    "event": ("customers", "CustomerEvent", "custom_event", "occurred_at"),
}


def _subjects(definition: dict, customer: Any, subject: Any, given: dict[str, Any]) -> dict[str, Any]:
    trigger = (definition.get("trigger") or {}).get("event", "")
    spec = registry.trigger_get(trigger)
    scopes = spec.scopes if spec else ("customer",)
    objects = {key: value for key, value in given.items() if value is not None}
    for scope in scopes:
        if scope not in SUBJECT_FIELDS:
            continue
        app_label, name, key, latest = SUBJECT_FIELDS[scope]
        if key in objects:
            continue
        rows = _model(app_label, name).objects.filter(customer=customer)
        found = rows.filter(pk=subject).first() if subject not in (None, "") else None
        objects[key] = found or rows.order_by(f"-{latest}", "-pk").first()
    order = objects.get("order")
    if order is not None and ("line" in scopes or "product" in scopes) and "line" not in objects:
        line = order.lines.select_related("product").first() if hasattr(order, "lines") else None
        objects["line"] = line
        objects["product"] = getattr(line, "product", None)
    return objects


def trace_run(
    *,
    definition: dict[str, Any],
    customer: Any,
    subject: Any = None,
    event: Any = None,
    **given: Any,
) -> dict[str, Any]:
    """Evaluate a definition for one customer and return the step-by-step trace; writes nothing."""
    now = timezone.now()
    with transaction.atomic():
        payload = dict(getattr(event, "payload", None) or {})
        objects = _subjects(definition, customer, subject, given) if event is None else {}
        context = context_build(customer=customer, payload=payload, now=now, extra={"test": True}, **objects)
        trace: dict[str, Any] = {"steps": [], "conditions": [], "actions": [], "trigger": None}
        where = (definition.get("trigger") or {}).get("where")
        if where:
            passed, values = _evaluate(where, context)
            trace["trigger"] = {"passed": passed, "values": values}
            trace["conditions"].append({"path": "trigger.where", "result": passed, "values": values})
        else:
            trace["trigger"] = {"passed": True, "values": {}}
        if trace["trigger"]["passed"]:
            _trace_walk(definition.get("steps") or [], "steps", context, trace, now)
        # Belt and braces: evaluation is read-only, but a test run must never leave a trace in the database.
        transaction.set_rollback(True)
    waits = [step for step in trace["steps"] if step["badge"] == "waiting"]
    if not trace["trigger"]["passed"]:
        trace["summary"] = "The trigger filter is false for this customer: the workflow would not run."
    else:
        count = len(trace["actions"])
        trace["summary"] = f"{count} action{'s' if count != 1 else ''} would run" + (
            f", after {len(waits)} wait{'s' if len(waits) != 1 else ''}." if waits else "."
        )
    trace["subject"] = {key: getattr(value, "pk", None) for key, value in objects.items() if value is not None}
    return trace


def _trace_walk(steps: list, prefix: str, context: Any, trace: dict, now: datetime) -> None:
    for index, step in enumerate(steps):
        path = f"{prefix}[{index}]"
        entry: dict[str, Any] = {"id": step.get("id") or path, "path": path}
        if "if" in step:
            passed, values = _evaluate(step["if"], context)
            branch = "then" if passed else "else"
            entry.update(
                kind="condition",
                branch=branch,
                badge=branch,
                label="true → then" if passed else "false → else",
                details=[
                    [_value_label(step["if"], name), value]
                    for name, value in (values.items() if isinstance(values, dict) else [])
                ],
                result=passed,
                values=values,
            )
            trace["conditions"].append({"path": f"{path}.if", "result": passed, "values": values})
            trace["steps"].append(entry)
            _trace_walk(step.get(branch) or [], f"{path}.{branch}", context, trace, now)
        elif "wait" in step:
            until = wait_until(step["wait"], now)
            entry.update(
                kind="wait",
                badge="waiting",
                label=f"would wait until {until:%Y-%m-%d %H:%M}",
                details=[["until", until.isoformat()]],
            )
            trace["steps"].append(entry)
        else:
            spec = registry.action_get(step["action"])
            params = params_render(spec, step.get("params") or {}, context) if spec else {}
            preview = spec.preview(context, params) if spec and spec.preview else {"params": params}
            text = _action_sentence(spec, params) if spec else step["action"]
            entry.update(
                kind="action",
                badge="would_run",
                label="would run",
                details=[[key, value] for key, value in _jsonable(preview).items()],
                action=step["action"],
                params=_jsonable(params),
                would=_jsonable(preview),
            )
            trace["actions"].append(text)
            trace["steps"].append(entry)


def _value_label(condition: Any, key: str) -> str:
    """A readable label for an evaluated value: the field at that relative path ("all[0]" -> its field)."""
    import re

    node: Any = condition
    for segment in key.split(".") if key else []:
        match = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", segment)
        if match is None or not isinstance(node, dict) or match.group(1) not in node:
            return key
        node = node[match.group(1)]
        if match.group(2) is not None:
            try:
                node = node[int(match.group(2))]
            except (IndexError, TypeError, KeyError):
                return key
    field = node.get("field") if isinstance(node, dict) else None
    return f"{field} ({key})" if field and field != key else key


def _action_sentence(spec: registry.ActionSpec, params: dict[str, Any]) -> str:
    shown = ", ".join(
        f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}" for key, value in params.items()
    )
    return f"{spec.label} ({shown})" if shown else spec.label
