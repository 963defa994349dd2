"""
The set-based lane of a batch of events (issue 12). The runs a batch opens are written together: one insert
for the runs, one for their step rows, one for the effect ledger, one update closing the runs, and each action
step applied once for all the runs that reach it (the action's `run_many`: one insert for the tags of every
run at that step) — instead of a dozen statements and five savepoints per event.

What it keeps from the per-event path (`opening.domain_event_process`), which it must agree with row for row:
one run per workflow x event x customer (the unique constraint: a run already there makes the whole lane fall
back), skip reasons (active window, trigger filter, holdout; a run an action reports held out of a campaign
stops there, skipped), step rows with their inputs and outcomes, the
effect ledger (each effect recorded done with its outcome, in the transaction of the effect: exactly once),
waits parking the run, and the receipt committing with the effects.

What it leaves to the per-event path (`lane_split`): every event while a state tag is active, an event caused
by another run (chain depth, loop guard), a workflow with run limits (they lock the customer and count its
runs), a customer with several events in the batch (each must see the previous one's effects) — and, on any error, the
whole lane: it runs inside one savepoint, rolled back and redone event by event with their own savepoints, so
a poison event is isolated exactly as before, but only the batch that holds one pays for savepoints.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.customers.models import DomainEvent
from loyalty_site.lib.conditions import EvaluationContext
from loyalty_site.lib.split import held_out, workflow_holdout_salt

from .. import registry
from ..choices import HELD_OUT, EffectStatus, RunKind, RunStatus, StepKind, StepStatus
from ..models import ActionEffect, Workflow, WorkflowRun, WorkflowRunStep
from ..secret_params import params_redact
from .context import context_build, evaluate, jsonable, params_render
from .scope import BatchScope
from .split import split_choose, split_inputs
from .waits import wait_until
from .walker import steps_walk

CAUSE_PREFIX = "workflow_run:"


def lane_split(events: list[DomainEvent], scope: BatchScope) -> tuple[list[DomainEvent], list[DomainEvent]]:
    """(the events the set-based lane takes, the events left to the per-event path), each in claim order."""
    from ..state_tags.runs import BRANCHES
    from ..state_tags.spec import SOURCE_PREFIX

    if scope.state_specs():
        # Active state tags re-evaluate customers as events change their figures, in event order per
        # customer: while any is active the whole batch goes event by event (not measured set-based yet).
        return [], list(events)
    per_customer = Counter(event.customer_id for event in events if event.customer_id is not None)
    followed: dict[str, bool] = {}
    lane: list[DomainEvent] = []
    alone: list[DomainEvent] = []
    for event in events:
        if event.name not in followed:
            followed[event.name] = _state_tags_follow(event.name, scope)
        ref = str((event.payload or {}).get("source_ref") or "")
        separate = (
            (event.cause or "").startswith(CAUSE_PREFIX)
            or followed[event.name]
            or (event.name in BRANCHES and ref.startswith(SOURCE_PREFIX))
            or (event.customer_id is not None and per_customer[event.customer_id] > 1)
            or any(_limited(workflow) for workflow in scope.listening(event.name))
        )
        (alone if separate else lane).append(event)
    return lane, alone


def _state_tags_follow(name: str, scope: BatchScope) -> bool:
    """Whether some active state tag re-evaluates its customers on events called `name`."""
    for spec in scope.state_specs():
        changed = spec.changed_by()
        if changed is None or name in changed:
            return True
    return False


def _limited(workflow: Workflow) -> bool:
    assert workflow.current_version is not None  # the scope holds workflows with a current version
    settings = workflow.current_version.settings or {}
    return bool(settings.get("max_runs_per_customer") or settings.get("min_interval_minutes"))


@dataclass
class _Item:
    """One admitted run walking its steps in the lane."""

    run: WorkflowRun
    context: EvaluationContext
    parked: bool = False
    # Why the run stopped early (an action reported the customer held out of a campaign): skipped from here on.
    stopped: str = ""


class _SetLane:
    """Opens the runs of a set of events, walks them per workflow and writes the rows together."""

    def __init__(self, scope: BatchScope, now: datetime) -> None:
        self.scope = scope
        self.now = now
        self.steps: list[WorkflowRunStep] = []
        self.effects: list[ActionEffect] = []
        self.waits: list[tuple[_Item, str, datetime]] = []

    def process(self, events: list[DomainEvent]) -> None:
        opened: list[tuple[WorkflowRun, EvaluationContext | None, dict[str, Any]]] = []
        for event in events:
            for workflow in self.scope.listening(event.name):
                opened.append(self._open(workflow, event))
        if not opened:
            return
        WorkflowRun.objects.bulk_create([run for run, _, _ in opened])
        groups: dict[int, list[_Item]] = {}
        for run, context, trigger_outcome in opened:
            self.steps.append(self._trigger_step(run, trigger_outcome))
            if run.status != RunStatus.RUNNING:
                continue
            if context is None:
                context = context_build(customer=run.customer, payload=run.context["payload"], now=self.now)
            context.extra.update({"run_id": run.pk, "cause": run.cause, "workflow_id": run.workflow_id})
            groups.setdefault(run.workflow_id, []).append(_Item(run, context))
        for items in groups.values():
            version = items[0].run.version
            assert version is not None
            steps_walk(version.definition.get("steps") or [], _SetVisitor(self), items, prefix="steps")
        self._write([item for items in groups.values() for item in items])

    def _open(
        self, workflow: Workflow, event: DomainEvent
    ) -> tuple[WorkflowRun, EvaluationContext | None, dict[str, Any]]:
        """The run of this workflow for the event (not saved): running, or skipped with its reason."""
        from .opening import _window_reason

        version = workflow.current_version
        assert version is not None
        settings = version.settings or {}
        customer = event.customer
        trigger_outcome: dict[str, Any] = {}
        context = None
        reason = _window_reason(settings, self.now)
        if not reason:
            where = (version.definition.get("trigger") or {}).get("where")
            if where:
                context = context_build(customer=customer, payload=event.payload, now=self.now)
                passed, values = evaluate(where, context)
                trigger_outcome = {"where": passed, "values": values}
                if not passed:
                    reason = "trigger filter is false"
        if (
            not reason
            and customer is not None
            and held_out(workflow_holdout_salt(workflow.pk), customer.pk, settings.get("holdout_percent"))
        ):
            reason = HELD_OUT
        run = WorkflowRun(
            workflow=workflow,
            version=version,
            kind=RunKind.EVENT,
            trigger_event=event,
            customer=customer,
            status=RunStatus.SKIPPED if reason else RunStatus.RUNNING,
            attempts=0 if reason else 1,
            started_at=None if reason else self.now,
            skip_reason=reason[:255],
            depth=0,
            context={"event_id": event.pk, "event": event.name, "payload": event.payload},
            finished_at=self.now if reason else None,
        )
        if reason:
            trigger_outcome = {**trigger_outcome, "skip_reason": reason}
        return run, context, trigger_outcome

    def _trigger_step(self, run: WorkflowRun, outcome: dict[str, Any]) -> WorkflowRunStep:
        event_context = run.context
        return WorkflowRunStep(
            run=run,
            path="trigger",
            step_id="trigger",
            kind=StepKind.TRIGGER,
            status=StepStatus.SKIPPED if run.status == RunStatus.SKIPPED else StepStatus.SUCCEEDED,
            inputs={
                "event": event_context["event"],
                "event_id": event_context["event_id"],
                "payload": jsonable(event_context["payload"]),
            },
            outcome=outcome,
            started_at=self.now,
            finished_at=timezone.now(),
        )

    def _write(self, items: list[_Item]) -> None:
        """The ledger, the step rows, and the runs closed (succeeded) or parked: a statement each."""
        if self.effects:
            ActionEffect.objects.bulk_create(self.effects)
        WorkflowRunStep.objects.bulk_create(self.steps)
        finished = timezone.now()
        done = [item.run.pk for item in items if not item.parked and not item.stopped]
        if done:
            WorkflowRun.objects.filter(pk__in=done).update(
                status=RunStatus.SUCCEEDED, error="", resume_step="", resume_at=None, finished_at=finished,
                updated_at=finished,
            )  # fmt: skip
        stopped: dict[str, list[int]] = {}
        for item in items:
            if item.stopped:
                stopped.setdefault(item.stopped, []).append(item.run.pk)
        for reason, ids in stopped.items():
            WorkflowRun.objects.filter(pk__in=ids).update(
                status=RunStatus.SKIPPED, skip_reason=reason, error="", finished_at=finished, updated_at=finished
            )
        parked: dict[tuple[str, datetime], list[int]] = {}
        for item, path, resume_at in self.waits:
            parked.setdefault((path, resume_at), []).append(item.run.pk)
        for (path, resume_at), ids in parked.items():
            WorkflowRun.objects.filter(pk__in=ids).update(
                status=RunStatus.WAITING, resume_at=resume_at, resume_step=path, updated_at=finished
            )


class _SetVisitor:
    """The step walker's visitor over a list of runs of one workflow (`walker.StepVisitor`)."""

    def __init__(self, lane: _SetLane) -> None:
        self.lane = lane

    @staticmethod
    def _alive(items: list[_Item]) -> list[_Item]:
        return [item for item in items if not item.parked and not item.stopped]

    def _step(self, item: _Item, step: dict[str, Any], path: str, **fields: Any) -> None:
        fields.setdefault("finished_at", timezone.now())
        self.lane.steps.append(WorkflowRunStep(run=item.run, path=path, step_id=step.get("id", ""), **fields))

    def condition(self, step: dict[str, Any], path: str, items: list[_Item]) -> Iterator[tuple[str, list[_Item]]]:
        branches: dict[str, list[_Item]] = {"then": [], "else": []}
        for item in self._alive(items):
            started = timezone.now()
            passed, values = evaluate(step["if"], item.context)
            branch = "then" if passed else "else"
            branches[branch].append(item)
            self._step(
                item,
                step,
                path,
                kind=StepKind.CONDITION,
                status=StepStatus.SUCCEEDED,
                branch=branch,
                inputs={"condition": step["if"]},
                outcome={"result": passed, "values": values},
                started_at=started,
            )
        for branch, chosen in branches.items():
            if chosen:
                yield branch, chosen

    def split(self, step: dict[str, Any], path: str, items: list[_Item]) -> Iterator[tuple[str, list[_Item]]]:
        branches: dict[str, list[_Item]] = {}
        for item in self._alive(items):
            started = timezone.now()
            customer_id = item.context.customer.pk if item.context.customer is not None else item.run.pk
            choice = split_choose(step, path, workflow_id=item.run.workflow_id, customer_id=customer_id)
            branches.setdefault(choice.branch, []).append(item)
            self._step(
                item,
                step,
                path,
                kind=StepKind.SPLIT,
                status=StepStatus.SUCCEEDED,
                branch=choice.name[:40],
                inputs=split_inputs(step),
                outcome={"branch": choice.name, "index": choice.index, "bucket": choice.bucket},
                started_at=started,
            )
        yield from branches.items()

    def wait(self, step: dict[str, Any], path: str, items: list[_Item]) -> None:
        # Parks these runs (the walk goes on for the others: parked items are skipped from here on).
        for item in self._alive(items):
            started = timezone.now()
            resume_at = wait_until(step["wait"], started)
            self._step(
                item,
                step,
                path,
                kind=StepKind.WAIT,
                status=StepStatus.WAITING,
                inputs={"wait": step["wait"]},
                outcome={"resume_at": resume_at.isoformat()},
                started_at=started,
                finished_at=None,
            )
            item.parked = True
            self.lane.waits.append((item, path, resume_at))

    def resumed(self, step: dict[str, Any], path: str, items: list[_Item]) -> None:
        raise AssertionError("the lane opens fresh runs: none resumes")  # pragma: no cover

    def action(self, step: dict[str, Any], path: str, items: list[_Item]) -> None:
        from .execution import effect_key

        alive = self._alive(items)
        if not alive:
            return
        started = timezone.now()
        spec = registry.action_get(step["action"])
        if spec is None or spec.run is None:
            raise registry.ActionRefused(f"unknown action {step['action']!r}")
        raw = step.get("params") or {}
        if "{{" in json.dumps(raw, default=str):
            params_list = [params_render(spec, raw, item.context) for item in alive]
        else:  # no dynamic parameter: rendered once for every run
            params_list = [params_render(spec, raw, alive[0].context)] * len(alive)
        keys = [effect_key(item.run, path) for item in alive]
        contexts = [item.context for item in alive]
        if spec.run_many is not None:
            outcomes = spec.run_many(contexts, params_list, keys)
        else:
            outcomes = [
                spec.run(context, params, key) or {}
                for context, params, key in zip(contexts, params_list, keys, strict=True)
            ]
        finished = timezone.now()
        inputs_of: dict[int, dict[str, Any]] = {}
        for item, params, key, outcome in zip(alive, params_list, keys, outcomes, strict=True):
            inputs = inputs_of.get(id(params))
            if inputs is None:
                inputs = inputs_of[id(params)] = {"action": spec.name, "params": jsonable(params_redact(spec, params))}
            recorded = jsonable(outcome or {})
            # The customer is held out of what this step gives (a campaign's holdout): nothing more for them.
            item.stopped = registry.held_out_reason(recorded)
            self.lane.effects.append(
                ActionEffect(
                    run=item.run,
                    path=path,
                    key=key,
                    action=spec.name,
                    status=EffectStatus.DONE,
                    outcome=recorded,
                    finished_at=finished,
                )
            )
            self._step(
                item,
                step,
                path,
                kind=StepKind.ACTION,
                status=StepStatus.SUCCEEDED,
                inputs=inputs,
                outcome=recorded,
                error="",
                started_at=started,
                finished_at=finished,
            )


def events_process_set(events: list[DomainEvent], scope: BatchScope, *, now: datetime | None = None) -> list[int]:
    """
    Open, execute and close the runs of `events` set-based (see the module); returns their ids, processed.
    Call it inside a savepoint: any error leaves partial writes that the caller must roll back.
    """
    _SetLane(scope, now or timezone.now()).process(events)
    return [event.pk for event in events]
