"""
Executing a claimed event run: walk its version's steps (from `resume_step`) with the one step walker,
write one step row per step, park the run on a `wait`, and run actions through the ActionEffect ledger (an
effect recorded done is never repeated; a database action commits with its ledger and step rows in one
transaction, so it happens exactly once). A customer in the workflow's holdout gets nothing: a resumed, retried
or replayed run whose customer the workflow now holds out stops before its next step, recorded skipped "held
out"; an action that reports the customer held out (a campaign's holdout) stops the run after that step.
Transient failures — an action's or the database's — schedule a
retry at the failed step (`claims`); any other error fails the run, keeping where it stopped for a replay.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from loyalty_site.lib.conditions import EvaluationContext
from loyalty_site.lib.split import held_out, workflow_holdout_salt
from loyalty_site.lib.tasks import db_connections_recover, db_error_is_transient, retry_transient

from .. import registry
from ..choices import HELD_OUT, EffectStatus, RunStatus, StepKind, StepStatus
from ..models import ActionEffect, Workflow, WorkflowRun, WorkflowRunStep
from ..secret_params import params_redact
from .claims import ERROR_MAX, run_claim, run_retry_or_dead
from .context import context_build, evaluate, jsonable, params_render
from .split import split_choose, split_inputs
from .waits import wait_until
from .walker import Wait, steps_walk

logger = logging.getLogger(__name__)


def step_record(run: WorkflowRun, path: str, **fields: Any) -> WorkflowRunStep:
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


class RunHeldOut(Exception):
    """An action reported the customer held out (a campaign's holdout): the run stops after that step."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def holdout_percent(workflow: Workflow, settings: dict[str, Any] | None) -> int:
    """
    The share a run of `workflow` pinned to a version with `settings` holds out: the larger of its version's and
    the workflow's current version's, so customers the workflow holds out now get nothing more from older runs
    (the same salt, so a larger share holds out everyone a smaller one did).
    """
    current = workflow.current_version
    percents = [
        (settings or {}).get("holdout_percent"),
        (current.settings or {}).get("holdout_percent") if current else 0,
    ]
    return max(int(percent or 0) for percent in percents)


def run_is_held_out(run: WorkflowRun) -> bool:
    """Whether the run's customer is in its workflow's holdout (see `holdout_percent`)."""
    if run.customer_id is None:
        return False
    percent = holdout_percent(run.workflow, run.version.settings if run.version else None)
    return held_out(workflow_holdout_salt(run.workflow_id), run.customer_id, percent)


def run_execute(*, run_id: int) -> str | None:
    """Execute (or resume, or retry) one event run; returns its status after this attempt."""
    now = timezone.now()
    run = run_claim(run_id, now)
    if run is None:
        return None
    return run_steps(run, now=now)


def run_steps(run: WorkflowRun, *, now: datetime, context: EvaluationContext | None = None) -> str:
    """Walk a claimed run's steps from its resume point and record how the attempt ended."""
    if run_is_held_out(run):
        return _skip(run, HELD_OUT)
    try:
        if getattr(run, "step_paths", None) is None:
            run.step_paths = set(run.steps.values_list("path", flat=True))
        if context is None:
            context = context_build(customer=run.customer, payload=(run.context or {}).get("payload"), now=now)
        context.extra.update({"run_id": run.pk, "cause": run.cause, "workflow_id": run.workflow_id})
        assert run.version is not None  # an event run is pinned to the version it started on
        # A state tag's "left" run walks its `left` steps; every other run its `steps`.
        branch = "left" if (run.context or {}).get("state") == "left" else "steps"
        steps = run.version.definition.get(branch) or []
        outcome = steps_walk(steps, _RunVisitor(run), context, resume=run.resume_step, prefix=branch)
    except RunHeldOut as stop:
        return _skip(run, stop.reason)
    except registry.TransientActionError as error:
        return run_retry_or_dead(run, error)
    except Exception as error:
        if db_error_is_transient(error):
            # A lost connection, a deadlock, a serialization failure: the failed step's transaction rolled
            # back (or committed with its ledger row), so retrying from that step keeps effects exactly once.
            logger.warning("workflow run %s: transient database error, retried later: %s", run.pk, error)
            db_connections_recover()
            return run_retry_or_dead(run, error)
        logger.warning("workflow run %s failed: %s", run.pk, error)
        run.resume_step = getattr(error, "step_path", "") or run.resume_step
        return _finish(run, RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
    if isinstance(outcome, Wait):
        return retry_transient(lambda: _park(run, outcome), what=f"run {run.pk}: park")
    return _finish(run, RunStatus.SUCCEEDED)


def _park(run: WorkflowRun, wait: Wait) -> str:
    WorkflowRun.objects.filter(pk=run.pk).update(
        status=RunStatus.WAITING, resume_at=wait.resume_at, resume_step=wait.path, updated_at=timezone.now()
    )
    return RunStatus.WAITING


def _skip(run: WorkflowRun, reason: str) -> str:
    """End the run skipped with `reason` (held out): nothing after this point runs; a wait it sat on is closed."""

    def record() -> str:
        now = timezone.now()
        with transaction.atomic():
            WorkflowRun.objects.filter(pk=run.pk).update(
                status=RunStatus.SKIPPED, skip_reason=reason[:255], error="", resume_at=None, finished_at=now,
                updated_at=now,
            )  # fmt: skip
            if run.resume_step:
                WorkflowRunStep.objects.filter(run=run, path=run.resume_step, status=StepStatus.WAITING).update(
                    status=StepStatus.SKIPPED, outcome={"skip_reason": reason}, finished_at=now
                )
        return RunStatus.SKIPPED

    return retry_transient(record, what=f"run {run.pk}: skip")


def _finish(run: WorkflowRun, status: str, *, error: str = "") -> str:
    def record() -> str:
        now = timezone.now()
        WorkflowRun.objects.filter(pk=run.pk).update(
            status=status,
            error=error[:ERROR_MAX],
            resume_step="" if status == RunStatus.SUCCEEDED else run.resume_step,
            resume_at=None,
            finished_at=now,
            updated_at=now,
        )
        return status

    return retry_transient(record, what=f"run {run.pk}: finish")


class _RunVisitor:
    """Execution: conditions and waits write step rows, actions act through the effect ledger."""

    def __init__(self, run: WorkflowRun) -> None:
        self.run = run

    def condition(self, step: dict, path: str, context: EvaluationContext) -> Iterator[tuple[str, EvaluationContext]]:
        started = timezone.now()
        passed, values = evaluate(step["if"], context)
        branch = "then" if passed else "else"
        step_record(
            self.run,
            path,
            step_id=step.get("id", ""),
            kind=StepKind.CONDITION,
            status=StepStatus.SUCCEEDED,
            branch=branch,
            inputs={"condition": step["if"]},
            outcome={"result": passed, "values": values},
            started_at=started,
        )
        yield branch, context

    def split(self, step: dict, path: str, context: EvaluationContext) -> Iterator[tuple[str, EvaluationContext]]:
        started = timezone.now()
        customer_id = context.customer.pk if context.customer is not None else self.run.pk
        choice = split_choose(step, path, workflow_id=self.run.workflow_id, customer_id=customer_id)
        step_record(
            self.run,
            path,
            step_id=step.get("id", ""),
            kind=StepKind.SPLIT,
            status=StepStatus.SUCCEEDED,
            branch=choice.name[:40],
            inputs=split_inputs(step),
            outcome={"branch": choice.name, "index": choice.index, "bucket": choice.bucket},
            started_at=started,
        )
        yield choice.branch, context

    def wait(self, step: dict, path: str, context: EvaluationContext) -> Wait:
        started = timezone.now()
        resume_at = wait_until(step["wait"], started)
        step_record(
            self.run,
            path,
            step_id=step.get("id", ""),
            kind=StepKind.WAIT,
            status=StepStatus.WAITING,
            inputs={"wait": step["wait"]},
            outcome={"resume_at": resume_at.isoformat()},
            started_at=started,
            finished_at=None,
        )
        return Wait(path, resume_at)

    def resumed(self, step: dict, path: str, context: EvaluationContext) -> None:
        step_record(self.run, path, step_id=step.get("id", ""), kind=StepKind.WAIT, status=StepStatus.SUCCEEDED)

    def action(self, step: dict, path: str, context: EvaluationContext) -> None:
        reason = registry.held_out_reason(action_execute(self.run, step, path, context))
        if reason:
            raise RunHeldOut(reason)


def effect_key(run: WorkflowRun, path: str) -> str:
    key = f"wr{run.pk}:{path}"
    if len(key) <= 100:
        return key
    return f"wr{run.pk}:{hashlib.sha256(path.encode()).hexdigest()[:40]}"


def action_execute(run: WorkflowRun, step: dict, path: str, context: EvaluationContext) -> dict[str, Any]:
    """Run one action step through the effect ledger; returns its recorded outcome."""
    started = timezone.now()
    spec = registry.action_get(step["action"])
    if spec is None or spec.run is None:
        raise registry.ActionRefused(f"unknown action {step['action']!r}")
    params = params_render(spec, step.get("params") or {}, context)
    key = effect_key(run, path)
    common = {
        "step_id": step.get("id", ""),
        "kind": StepKind.ACTION,
        "inputs": {"action": spec.name, "params": jsonable(params_redact(spec, params))},
    }
    try:
        if spec.transactional:
            # The effect, its ledger row and its step row commit together: exactly once.
            with transaction.atomic():
                return _action_apply(run, spec, path, key, params, context, started, common)
        return _action_apply(run, spec, path, key, params, context, started, common)
    except Exception as error:
        if db_error_is_transient(error):
            raise  # the connection may be gone: the run's retry records this step
        if isinstance(error, registry.TransientActionError):
            message = f"transient: {error}"
        else:
            message = f"{type(error).__name__}: {error}"
        step_record(run, path, status=StepStatus.FAILED, error=message[:ERROR_MAX], started_at=started, **common)
        raise


def _action_apply(
    run: WorkflowRun,
    spec: registry.ActionSpec,
    path: str,
    key: str,
    params: dict[str, Any],
    context: EvaluationContext,
    started: datetime,
    common: dict[str, Any],
) -> dict[str, Any]:
    if getattr(run, "fresh", False):  # a run's first execution has no effects yet
        effect = ActionEffect.objects.create(run=run, path=path, key=key, action=spec.name)
    else:
        effect, _ = ActionEffect.objects.get_or_create(
            run=run, path=path, defaults={"key": key, "action": spec.name, "status": EffectStatus.STARTED}
        )
    if effect.status == EffectStatus.DONE:
        outcome = {**effect.outcome, "already_done": True}
    else:
        assert spec.run is not None  # checked by action_execute
        outcome = jsonable(spec.run(context, params, key) or {})
        ActionEffect.objects.filter(pk=effect.pk).update(
            status=EffectStatus.DONE, outcome=outcome, finished_at=timezone.now()
        )
    step_record(run, path, status=StepStatus.SUCCEEDED, outcome=outcome, error="", started_at=started, **common)
    return outcome
