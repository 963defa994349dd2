"""Periodic jobs of the engine: re-enqueue runs due for a retry (or lost), resume waiting runs whose time came."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from loyalty_site.lib import tasks as task_queue

from ..choices import RunKind, RunStatus, WorkflowStatus
from ..models import WorkflowRun
from .claims import stale_after

# A pending run nobody picked up for this long is re-enqueued by `runs_retry_due`.
PENDING_GRACE = timedelta(minutes=1)
SWEEP_BATCH = 5000


def runs_retry_due(*, now: datetime | None = None) -> int:
    """Enqueue runs whose retry time came, pending runs never picked up, and runs whose worker died."""
    now = now or timezone.now()
    due = WorkflowRun.objects.filter(kind=RunKind.EVENT).filter(
        Q(status=RunStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=RunStatus.PENDING, next_attempt_at__isnull=True, updated_at__lt=now - PENDING_GRACE)
        | Q(status=RunStatus.RUNNING, updated_at__lt=now - stale_after())
    )
    ids = list(due.order_by("pk").values_list("pk", flat=True)[:SWEEP_BATCH])
    for run_id in ids:
        task_queue.enqueue_on_commit("apps.automations.tasks.run_execute", run_id)
    return len(ids)


def runs_resume_due(*, now: datetime | None = None) -> int:
    """Resume waiting runs whose time came, unless their workflow is paused (held until re-activated)."""
    now = now or timezone.now()
    ids = list(
        WorkflowRun.objects.filter(
            status=RunStatus.WAITING, resume_at__lte=now, workflow__status=WorkflowStatus.ACTIVE
        ).values_list("pk", flat=True)[:SWEEP_BATCH]
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
