"""
Claims, attempts and retries. Attempts are counted on the run row when a worker claims it (django-q2
re-delivers a task whose worker died without counting it), so a run that keeps killing its worker still
ends `dead`. A transient failure — an action's (`TransientActionError`) or the database's (a lost
connection, a deadlock, a serialization failure) — sets the run back to pending with an exponential
back-off; after `max_attempts` it is dead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from loyalty_site.lib.tasks import retry_transient

from ..choices import RunKind, RunStatus
from ..models import WorkflowRun

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
ERROR_MAX = 2000


def stale_after() -> timedelta:
    """A run still `running` this long after its last write lost its worker (django-q2 timeout + margin)."""
    q_cluster = getattr(django_settings, "Q_CLUSTER", {})
    return timedelta(seconds=int(q_cluster.get("timeout", 120)) + 10)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def run_claim(run_id: int, now: datetime) -> WorkflowRun | None:
    """Claim a pending (or stale running) event run for this worker, counting the attempt; None if not ours."""
    with transaction.atomic():
        run = (
            WorkflowRun.objects.select_for_update(of=("self",))
            .select_related("version", "customer", "workflow__current_version")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.kind != RunKind.EVENT:
            return None
        if run.status == RunStatus.RUNNING and run.updated_at > now - stale_after():
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


def run_retry_or_dead(run: WorkflowRun, error: BaseException) -> str:
    """After a transient failure: pending again with back-off, resuming at the failed step; dead when out of tries."""
    message = f"{type(error).__name__}: {error}"[:ERROR_MAX]
    path = getattr(error, "step_path", "") or run.resume_step

    def record() -> str:
        now = timezone.now()
        if run.attempts >= run.max_attempts:
            WorkflowRun.objects.filter(pk=run.pk).update(
                status=RunStatus.DEAD, error=message, resume_step=path, finished_at=now, updated_at=now
            )
            return RunStatus.DEAD
        WorkflowRun.objects.filter(pk=run.pk).update(
            status=RunStatus.PENDING,
            error=message,
            resume_step=path,
            next_attempt_at=now + backoff(run.attempts),
            updated_at=now,
        )
        return RunStatus.PENDING

    return retry_transient(record, what=f"run {run.pk}: record the retry")
