"""
The "entered" and "left" steps of a state tag. When the state tag adds its tag, the `customer.tag_added`
outbox event (reference `state_tag:<id>`) opens a run of the workflow on its `steps`; when it removes it,
`customer.tag_removed` opens one on its `left` steps. They are ordinary event runs (unique per workflow x
event x customer, step rows, retries, waits), so a marketer sees them in the run history like any other.
A customer in the workflow's holdout keeps the tag (it describes them) but gets none of these steps: the run
is recorded skipped "held out", as an event run is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.customers.models import DomainEvent
from loyalty_site.lib.split import held_out, workflow_holdout_salt

from ..choices import HELD_OUT, RunKind, RunStatus, StepKind, StepStatus, WorkflowStatus
from ..engine.context import jsonable
from ..engine.execution import holdout_percent, run_steps, step_record
from ..models import Workflow, WorkflowRun
from .spec import SOURCE_PREFIX, TAG_ADDED, TAG_REMOVED, StateSpec

BRANCHES = {TAG_ADDED: "entered", TAG_REMOVED: "left"}


def _workflow_of(event: DomainEvent) -> Workflow | None:
    ref = str((event.payload or {}).get("source_ref") or "")
    if event.name not in BRANCHES or not ref.startswith(SOURCE_PREFIX):
        return None
    try:
        pk = int(ref[len(SOURCE_PREFIX) :])  # "state_tag:12:fill" (the activation's fill) is not a number
    except ValueError:
        return None
    return (
        Workflow.objects.filter(pk=pk, status=WorkflowStatus.ACTIVE, current_version__isnull=False)
        .select_related("current_version")
        .first()
    )


def transition_run_open(event: DomainEvent, *, now: datetime | None = None) -> WorkflowRun | None:
    """Open and execute the "entered"/"left" run this tag event starts, if any; None when there is none."""
    workflow = _workflow_of(event)
    if workflow is None or event.customer_id is None:
        return None
    branch = BRANCHES[event.name]
    spec = StateSpec.of(workflow)
    if not (spec.entered_steps if branch == "entered" else spec.left_steps):
        return None
    now = now or timezone.now()
    context: dict[str, Any] = {"event_id": event.pk, "event": event.name, "payload": event.payload, "state": branch}
    assert workflow.current_version is not None  # selected with current_version__isnull=False
    percent = holdout_percent(workflow, workflow.current_version.settings)
    reason = HELD_OUT if held_out(workflow_holdout_salt(workflow.pk), event.customer_id, percent) else ""
    with transaction.atomic():
        try:
            with transaction.atomic():
                run = WorkflowRun.objects.create(
                    workflow=workflow,
                    version=workflow.current_version,
                    kind=RunKind.EVENT,
                    trigger_event=event,
                    customer_id=event.customer_id,
                    status=RunStatus.SKIPPED if reason else RunStatus.RUNNING,
                    attempts=0 if reason else 1,
                    started_at=None if reason else now,
                    skip_reason=reason,
                    finished_at=now if reason else None,
                    context=context,
                )
        except IntegrityError:
            return None  # a re-delivered event: its run exists (the engine resumes pending ones)
        run.step_paths = set()
        run.fresh = True
        run.opened_context = None
        step_record(
            run,
            "trigger",
            step_id="trigger",
            kind=StepKind.TRIGGER,
            status=StepStatus.SKIPPED if reason else StepStatus.SUCCEEDED,
            inputs={"event": event.name, "event_id": event.pk, "payload": jsonable(event.payload)},
            outcome={
                "state": branch,
                "tag": (event.payload or {}).get("tag"),
                **({"skip_reason": reason} if reason else {}),
            },
            started_at=now,
        )
    if not reason:
        run_steps(run, now=now)
    return run
