from django.db import models


class WorkflowStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class RunKind(models.TextChoices):
    EVENT = "event", "Event"
    BULK = "bulk", "Bulk"
    TEST = "test", "Test"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    SUCCEEDED = "succeeded", "Succeeded"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Dead"


class StepKind(models.TextChoices):
    TRIGGER = "trigger", "Trigger"
    CONDITION = "condition", "Condition"
    ACTION = "action", "Action"
    WAIT = "wait", "Wait"
    SPLIT = "split", "A/B split"


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    WAITING = "waiting", "Waiting"


class EffectStatus(models.TextChoices):
    STARTED = "started", "Started"
    DONE = "done", "Done"


# Runs still going: a run in one of these states counts against run limits and blocks nothing else.
LIVE_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)


# WorkflowRun.skip_reason of a run whose customer is in the workflow's holdout (they receive nothing).
HELD_OUT = "held out"
