from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .choices import EffectStatus, RunKind, RunStatus, StepKind, StepStatus, WorkflowStatus

if TYPE_CHECKING:
    from loyalty_site.lib.conditions import EvaluationContext


class Workflow(models.Model):
    """
    A marketer's trigger → if/then/else → action flow. `definition` is the editable JSON; activation freezes
    it (with the settings) into an immutable WorkflowVersion that new runs are pinned to.
    """

    Status = WorkflowStatus

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    trigger = models.CharField(max_length=64, db_index=True, help_text="Trigger event name, e.g. order.created")
    definition = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=WorkflowStatus.choices, default=WorkflowStatus.DRAFT)
    active_from = models.DateTimeField(null=True, blank=True)
    active_until = models.DateTimeField(null=True, blank=True)
    max_runs_per_customer = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    max_runs_period_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Period the run limit counts over; empty: for ever."
    )
    min_interval_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Minimum time between two runs for the same customer."
    )
    holdout_percent = models.PositiveSmallIntegerField(
        default=0,
        blank=True,
        help_text="A stable random share of customers (0-50 %) that this workflow leaves out, recorded as held out.",
    )
    message_priority = models.PositiveSmallIntegerField(
        default=0,
        help_text="0-100. When two workflows message a customer at once, the higher priority wins and the "
        "other's message is recorded as suppressed (lower priority).",
    )
    schedule_cron = models.CharField(max_length=100, blank=True, help_text="Bulk trigger: cron schedule (UTC).")
    audience = models.JSONField(null=True, blank=True, help_text="Bulk trigger: condition; empty = all customers.")
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="Bulk trigger: next schedule slot.")
    current_version = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    has_unpublished_changes = models.BooleanField(default=False)
    template = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="The gallery template it was installed from, if any."
    )
    state_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="State tag: when the time pass last re-evaluated it (windows slide)."
    )
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["status", "trigger"], name="workflow_status_trigger_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(holdout_percent__lte=50), name="workflow_holdout_percent_lte_50"),
            models.CheckConstraint(
                condition=Q(active_until__isnull=True)
                | Q(active_from__isnull=True)
                | Q(active_until__gt=models.F("active_from")),
                name="workflow_active_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def kind(self) -> str:
        """`state` (a state tag: its trigger is `customer.state_tag`), `bulk` (scheduled) or `event`."""
        if self.trigger == "customer.state_tag":
            return "state"
        return "bulk" if self.trigger == "customer.bulk_activity" else "event"

    @property
    def active_version(self) -> WorkflowVersion | None:
        """The version new runs are pinned to (the last activated one)."""
        return self.current_version

    def settings_snapshot(self) -> dict:
        """The settings frozen into a version alongside the definition."""
        return {
            "active_from": self.active_from.isoformat() if self.active_from else None,
            "active_until": self.active_until.isoformat() if self.active_until else None,
            "max_runs_per_customer": self.max_runs_per_customer,
            "max_runs_period_days": self.max_runs_period_days,
            "min_interval_minutes": self.min_interval_minutes,
            "holdout_percent": self.holdout_percent,
            "schedule_cron": self.schedule_cron,
            "audience": self.audience,
        }


class WorkflowVersion(models.Model):
    """An immutable snapshot of a workflow's definition and settings, frozen on activation."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=64)
    definition = models.JSONField()
    settings = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_number_uniq")]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"


class WorkflowRun(models.Model):
    """
    One execution of a workflow version: for one customer and one trigger event (kind event), over an
    audience (kind bulk), or a trace without side effects (kind test). Attempts are counted here, not by
    the queue, so a task that keeps killing its worker still ends `dead`.
    """

    Kind = RunKind
    Status = RunStatus

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    kind = models.CharField(max_length=8, choices=RunKind.choices, default=RunKind.EVENT)
    trigger_event = models.ForeignKey(
        "customers.DomainEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="workflow_runs"
    )
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="workflow_runs"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    skip_reason = models.CharField(max_length=255, blank=True)
    depth = models.PositiveSmallIntegerField(default=0, help_text="Position in a chain of workflows (loop guard).")
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    resume_step = models.CharField(max_length=255, blank=True, help_text="Path of the step to resume from.")
    context = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    slot = models.CharField(max_length=64, blank=True, help_text="Bulk: schedule slot key.")
    progress = models.JSONField(default=dict, blank=True)
    started_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Not columns: what the engine keeps on a run row while it executes it (set in engine.opening/claims).
    step_paths: set[str] | None  # paths of the step rows already written; None: read them when needed
    fresh: bool  # a first execution: no step rows or effects to look up
    opened_context: EvaluationContext | None  # the context the run was opened with (runs executed at once)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "trigger_event", "customer"],
                condition=Q(trigger_event__isnull=False),
                name="workflow_run_event_uniq",
            ),
            models.UniqueConstraint(fields=["workflow", "slot"], condition=~Q(slot=""), name="workflow_run_slot_uniq"),
        ]
        indexes = [
            models.Index(fields=["status", "resume_at"], name="workflow_run_resume_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="workflow_run_retry_idx"),
            models.Index(fields=["workflow", "-created_at"], name="workflow_run_workflow_idx"),
            models.Index(fields=["customer", "-created_at"], name="workflow_run_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} of {self.workflow_id} ({self.status})"

    @property
    def cause(self) -> str:
        """What this run's writes carry as their cause (DomainEvent.cause, tag source_ref)."""
        return f"workflow_run:{self.pk}"


class WorkflowRunStep(models.Model):
    """One step of a run: the branch taken and why, an action's inputs and outcome, timings, errors."""

    Kind = StepKind
    Status = StepStatus

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    step_id = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=255, help_text='e.g. "steps[0].then[1]"')
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    status = models.CharField(max_length=16, choices=StepStatus.choices)
    branch = models.CharField(max_length=40, blank=True, help_text="Condition: then / else; split: the branch's name.")
    inputs = models.JSONField(default=dict, blank=True)
    outcome = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "pk"]
        # A re-executed step (retry, re-delivered task) updates its row instead of adding one.
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="workflow_run_step_path_uniq")]

    def __str__(self) -> str:
        return f"{self.path} ({self.status})"


class ActionEffect(models.Model):
    """
    The idempotency ledger of actions: one row per (run, step path). An action whose effect row is done
    is never repeated by a re-delivered task; `started` means a previous attempt may have acted (the
    webhook is re-sent with the same webhook-id so the receiver can de-duplicate).
    """

    Status = EffectStatus

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="effects")
    path = models.CharField(max_length=255)
    key = models.CharField(max_length=100, unique=True)
    action = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=EffectStatus.choices, default=EffectStatus.STARTED)
    outcome = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="action_effect_run_path_uniq")]

    def __str__(self) -> str:
        return self.key
