"""
Opening runs: the engine's outbox consumer. `domain_event_process` takes one outbox event, opens one run per
active workflow listening to its trigger (unique per workflow x event x customer, so a re-delivered task
opens nothing new), records why a run is skipped (filter false, outside the active window, run limits, loop
guard, chain depth), executes the admitted runs and records the engine's receipt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.customers import outbox
from apps.customers.choices import DomainEventStatus
from apps.customers.models import DomainEvent, DomainEventReceipt
from loyalty_site.lib import tasks as task_queue
from loyalty_site.lib.split import held_out, workflow_holdout_salt
from loyalty_site.lib.tasks import db_error_is_transient, retry_transient

from .. import registry
from ..choices import HELD_OUT, RunKind, RunStatus, StepKind, StepStatus, WorkflowStatus
from ..definitions import steps_walk as definition_steps_walk
from ..models import Workflow, WorkflowRun
from ..signals import CONSUMER
from .claims import ERROR_MAX, stale_after
from .context import context_build, context_objects_load, evaluate, jsonable
from .execution import run_execute, run_steps, step_record
from .scope import batch_scope, batch_scoped, workflows_active
from .sets import events_process_set, lane_split

logger = logging.getLogger(__name__)

CAUSE_PREFIX = "workflow_run:"
# The engine's per-event outbox task (coalesced into `DRAIN_TASK` on PostgreSQL with batches; see `signals.py`).
TASK = "apps.automations.tasks.process_domain_event"
DRAIN_TASK = "apps.automations.tasks.events_drain"


def domain_event_process(*, event_id: int) -> list[int]:
    """Open and execute the runs of every active workflow for this event; returns the opened run ids."""
    scope = batch_scope()
    event = scope.events.get(event_id) if scope is not None else None
    if event is None:
        event = (
            DomainEvent.objects.select_related("customer")
            .annotate(consumed=Exists(DomainEventReceipt.objects.filter(event=OuterRef("pk"), consumer=CONSUMER)))
            .filter(pk=event_id)
            .first()
        )
    if event is None or event.status == DomainEventStatus.PROCESSED or getattr(event, "consumed", False):
        return []
    now = timezone.now()
    # The higher message priority first: when two workflows message the customer for the same event, the
    # first one's message wins and the lower one's is recorded as suppressed (lower_priority).
    if scope is not None:
        workflows: Iterable[Workflow] = scope.listening(event.name)
    else:
        workflows = (
            Workflow.objects.filter(
                status=WorkflowStatus.ACTIVE, current_version__isnull=False, current_version__trigger=event.name
            )
            .select_related("current_version")
            .order_by("-message_priority", "name", "pk")
        )
    parent = _parent_run(event.cause or "")
    opened: list[WorkflowRun] = []
    redelivered = False
    for workflow in workflows:
        try:
            run = _run_open(workflow=workflow, event=event, parent=parent, now=now)
        except Exception as error:
            if db_error_is_transient(error):
                raise  # not the workflow's fault: the task retries, the outbox sweep is the net
            # e.g. a trigger filter that cannot be evaluated: recorded failed, never a poison event
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
            run_steps(run, now=now, context=run.opened_context)
    _state_tags_follow(event, now=now)
    if scope is not None:
        scope.consumed.append(event.pk)  # the batch writes its receipts together, in its transaction
    else:
        outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
    return [run.pk for run in opened]


def _state_tags_follow(event: DomainEvent, *, now: datetime) -> None:
    """
    State tags in real time: re-evaluate the customer for every active state tag this event can change (the
    catalog's `changed_by`), and run a state tag's "entered"/"left" steps when this event is its tag change.
    A transient database error propagates (the task retries the event); any other is logged, never poison.
    """
    from ..state_tags import customer_reevaluate, state_units, state_workflows_active, transition_run_open

    try:
        transition_run_open(event, now=now)
        if event.customer_id is None:
            return
        units = []
        for unit in state_units(state_workflows_active()):
            changed = [spec.changed_by() for spec in unit]
            if any(names is None or event.name in names for names in changed):
                units.append(unit)
        if units:
            customer_reevaluate(customer_id=event.customer_id, units=units, now=now)
    except Exception as error:
        if db_error_is_transient(error):
            raise
        logger.warning("state tags: event %s (%s) not followed: %s", event.pk, event.name, error)


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
    start = parse_datetime(settings["active_from"]) if settings.get("active_from") else None
    end = parse_datetime(settings["active_until"]) if settings.get("active_until") else None
    if start and now < start:
        return f"outside the active window (starts {start.isoformat()})"
    if end and now >= end:
        return f"outside the active window (ended {end.isoformat()})"
    return ""


def _run_open(
    *, workflow: Workflow, event: DomainEvent, parent: WorkflowRun | None, now: datetime
) -> WorkflowRun | None:
    """
    Create this workflow's run for the event: claimed (running, attempt 1) or skipped with its reason;
    None if it exists already.
    """
    version = workflow.current_version
    assert version is not None  # selected with current_version__isnull=False
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
            passed, values = evaluate(where, context)
            trigger_outcome = {"where": passed, "values": values}
            if not passed:
                reason = "trigger filter is false"
    max_depth = django_settings.AUTOMATIONS_MAX_CHAIN_DEPTH
    if reason:
        pass
    elif parent and depth > max_depth:
        reason = f"chain depth limit reached ({max_depth}) — started by run #{parent.pk}"
    elif parent and parent.workflow_id == workflow.pk and parent.customer_id == event.customer_id:
        reason = f"loop guard: triggered by this workflow's own run #{parent.pk} for the same customer"
    with transaction.atomic():
        if not reason and (settings.get("max_runs_per_customer") or settings.get("min_interval_minutes")):
            # Serialise the limit check per customer so two events at once cannot both pass it.
            if customer is not None:
                type(customer).objects.select_for_update().filter(pk=customer.pk).first()
            reason = _limits_reason(workflow, settings, event.customer_id, now)
        if (
            not reason
            and customer is not None
            and held_out(workflow_holdout_salt(workflow.pk), customer.pk, settings.get("holdout_percent"))
        ):
            # The workflow's holdout: a stable share of customers that gets nothing, for measuring lift.
            reason = HELD_OUT
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
        step_record(
            run,
            "trigger",
            step_id="trigger",
            kind=StepKind.TRIGGER,
            status=StepStatus.SKIPPED if reason else StepStatus.SUCCEEDED,
            inputs={"event": event.name, "event_id": event.pk, "payload": jsonable(event.payload)},
            outcome={**trigger_outcome, **({"skip_reason": reason} if reason else {})},
            started_at=now,
        )
    return run


def _run_open_failed(*, workflow: Workflow, event: DomainEvent, now: datetime, error: Exception) -> None:
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


def domain_events_process_batch(*, event_id: int, limit: int | None = None) -> int:
    """
    The engine's outbox task: on PostgreSQL, claim up to `limit` (AUTOMATIONS_EVENT_BATCH) pending events
    the engine has not consumed — `SELECT … FOR NO KEY UPDATE SKIP LOCKED`, so concurrent workers take
    disjoint batches — and process them in one transaction: their runs, step rows, effects, ledger rows and
    receipts commit together (one commit per batch instead of several per event), or none does and the whole
    batch is retried (the task's `retry_transient`, then the outbox sweep). Exactly once holds as for one
    event: an event's receipt commits with its effects. Events are processed in customer order, so two
    batches lock customers in the same order.

    A fresh event's task claims a batch of fresh events (younger than the outbox grace). An older event's task
    — a backlog, or a sweep's re-drive — claims a batch of old events too (`_backlog_process`), but counts the
    claim on the events in a commit of its own first: an event a batch already took without finishing it (the
    batch died with its worker, or the event failed inside it: `batch_claims` > 0) goes alone, so a poison event
    cannot take batches down with it twice. Falls back to one event (`domain_event_process`) for such an event,
    on SQLite, with a limit of 1, or while some active workflow has a non-transactional action (e-mail,
    webhook: slow I/O must not run inside a transaction). Returns how many events were processed.
    """
    limit = django_settings.AUTOMATIONS_EVENT_BATCH if limit is None else limit
    now = timezone.now()
    fresh_since = now - outbox.OUTBOX_GRACE
    if limit <= 1 or connection.vendor != "postgresql":
        domain_event_process(event_id=event_id)
        return 1
    own = DomainEvent.objects.filter(pk=event_id).values("status", "created_at", "batch_claims", "batch_claimed_at")
    state = own.first()
    if state is None:
        return 0
    if state["batch_claims"] and state["status"] == DomainEventStatus.PENDING:
        if state["batch_claimed_at"] is not None and state["batch_claimed_at"] > now - stale_after():
            return 0  # a backlog batch is at work on it; if that batch dies, the lease ends and the sweep re-drives it
        # It already failed in a batch or its batch died: alone, where its runs count attempts.
        domain_event_process(event_id=event_id)
        return 1
    if not _batchable(workflows := workflows_active()):
        domain_event_process(event_id=event_id)
        return 1
    if state["created_at"] < fresh_since:
        return _backlog_process(workflows=workflows, fresh_since=fresh_since, limit=limit, now=now)
    return _fresh_process(workflows=workflows, fresh_since=fresh_since, limit=limit)


def _fresh_process(*, workflows: list[Workflow], fresh_since: datetime, limit: int) -> int:
    """Claim up to `limit` fresh pending events (SKIP LOCKED), process them in one transaction; how many it took."""
    with transaction.atomic():
        claimed = list(_claimable(created_at__gte=fresh_since).select_related("customer")[:limit])
        taken = len(claimed)
        claimed = _unconsumed_after_lock(claimed)
        _claimed_process(claimed, workflows)
    return taken


# How long one drain task keeps claiming batches before handing over to a fresh task (well under the
# django-q2 timeout; other tasks get a worker in between).
DRAIN_SECONDS = 10.0


def domain_events_drain(*, limit: int | None = None, seconds: float = DRAIN_SECONDS) -> int:
    """
    The engine's drain task (the outbox's coalescing, see `apps.customers.outbox`), the loop of
    `loyalty_site.lib.tasks.drain_run`: clear the "drain queued" mark, then claim and process batches of pending
    events — fresh ones; a backlog's after a short claim, once per drain or when the fresh claim was empty — until
    a claim comes back short (after one that took something it lingers a moment, holding the mark, and claims
    again). After a full batch it asks for a helper drain; after `seconds` it stops. While an active workflow has
    a non-transactional action, each claimed event is processed alone, outside a batch's transaction
    (`_claimed_alone`). Returns how many events were taken.
    """
    limit = django_settings.AUTOMATIONS_EVENT_BATCH if limit is None else limit
    return task_queue.drain_run(
        TASK,
        fresh=_drain_fresh,
        backlog=_drain_backlog,
        limit=max(limit, 1),
        seconds=seconds,
        what="automations: drain",
    )


def _drain_fresh(limit: int) -> int:
    """A drain's claim of fresh events (of any pending one while batches are off). How many it took."""
    now = timezone.now()
    workflows = workflows_active()
    if limit <= 1 or connection.vendor != "postgresql" or not _batchable(workflows):
        return _claimed_alone(limit=limit, now=now)
    return _fresh_process(workflows=workflows, fresh_since=now - outbox.OUTBOX_GRACE, limit=limit)


def _drain_backlog(limit: int) -> int:
    """A drain's claim of a backlog's events (none while batches are off: `_claimed_alone` took any). How many."""
    now = timezone.now()
    workflows = workflows_active()
    if connection.vendor != "postgresql" or not _batchable(workflows):
        return 0
    return _backlog_process(workflows=workflows, fresh_since=now - outbox.OUTBOX_GRACE, limit=limit, now=now)


def _claimable(**age: datetime) -> QuerySet[DomainEvent]:
    """
    The pending events no batch took yet and the engine has not consumed, of the age given (`created_at__gte` /
    `created_at__lt`, or any), in id order, locked as they are read — those another claim holds are skipped.
    """
    return (
        DomainEvent.objects.filter(status=DomainEventStatus.PENDING, batch_claims=0, **age)
        .exclude(Exists(DomainEventReceipt.objects.filter(event=OuterRef("pk"), consumer=CONSUMER)))
        .order_by("pk")
        .select_for_update(skip_locked=True, no_key=True, of=("self",))
    )


def _claimed_alone(*, limit: int, now: datetime) -> int:
    """
    A drain while batches are off (a non-transactional action is active): claim up to `limit` pending events no
    batch took — counted with a lease in a commit of their own, as a backlog batch claims — then process each
    alone (`domain_event_process`: its runs commit on their own, slow I/O after commit). If the worker dies, the
    lease ends and the sweep drives each event alone; an event that fails is left to the sweep at once.
    """
    with transaction.atomic():
        ids = list(_claimable().values_list("pk", flat=True)[:limit])
        if ids:
            DomainEvent.objects.filter(pk__in=ids).update(batch_claims=F("batch_claims") + 1, batch_claimed_at=now)
    for event_id in ids:
        try:
            retry_transient(lambda: domain_event_process(event_id=event_id), what=f"automations: event {event_id}")  # noqa: B023
        except Exception as error:
            logger.exception("automations: event %s not processed by its drain: %s", event_id, error)
            DomainEvent.objects.filter(pk=event_id).update(batch_claimed_at=None)  # the sweep drives it alone
    return len(ids)


def _unconsumed_after_lock(claimed: list[DomainEvent]) -> list[DomainEvent]:
    """
    The claimed events still without the engine's receipt, read again now that their row locks are ours.

    The claim's `NOT EXISTS` is evaluated on the snapshot its statement started with. Another batch may have
    held an event's row lock then and committed its receipt before our lock was granted: the batch's writes do
    not touch the outbox row while the event stays pending for another consumer (loyalty), so PostgreSQL has
    no new row version to recheck and hands us the lock on an event already processed — its run would then
    hit `workflow_run_event_uniq` and the whole set-based lane be redone event by event. This read is a new
    statement, so it sees every receipt committed before our locks were granted; a batch committing one later
    would have needed the lock we now hold.
    """
    if not claimed:
        return claimed
    consumed = set(
        DomainEventReceipt.objects.filter(event_id__in=[event.pk for event in claimed], consumer=CONSUMER)
        .values_list("event_id", flat=True)
        .order_by()
    )
    if not consumed:
        return claimed
    return [event for event in claimed if event.pk not in consumed]


def _backlog_process(*, workflows: list[Workflow], fresh_since: datetime, limit: int, now: datetime) -> int:
    """
    A batch of events older than the outbox grace that no batch has taken yet: the claim (`batch_claims` + 1 and
    a lease) commits first, then the events are processed in one transaction as a fresh batch is. If the batch
    dies with its worker, its events are counted and each goes alone afterwards; a transient error retries the
    processing of the same events here. Returns how many events were processed.
    """
    unconsumed = Exists(DomainEventReceipt.objects.filter(event=OuterRef("pk"), consumer=CONSUMER))
    with transaction.atomic():
        ids = list(_claimable(created_at__lt=fresh_since).values_list("pk", flat=True)[:limit])
        if ids:
            DomainEvent.objects.filter(pk__in=ids).update(batch_claims=F("batch_claims") + 1, batch_claimed_at=now)
    if not ids:
        return 0

    def process() -> int:
        with transaction.atomic():
            # The claim made these events ours: wait for a lock on them rather than skip it. A concurrent claim
            # whose snapshot predates ours may hold one briefly (PostgreSQL keeps the lock of a row that failed a
            # locking SELECT's recheck until that transaction ends); skipped, they would wait out their lease.
            claimed = list(
                DomainEvent.objects.filter(pk__in=ids, status=DomainEventStatus.PENDING)
                .exclude(unconsumed)
                .select_related("customer")
                .order_by("pk")
                .select_for_update(no_key=True, of=("self",))
            )
            claimed = _unconsumed_after_lock(claimed)
            # A processed event's lease no longer matters; a failed one's is ended there (its count kept).
            _claimed_process(claimed, workflows)
        return len(claimed)

    return retry_transient(process, what=f"automations: backlog batch of {len(ids)} events")


def _claimed_process(claimed: list[DomainEvent], workflows: list[Workflow]) -> None:
    """Process claimed events inside the caller's transaction: the set-based lane, the rest one by one, the receipts."""
    seen: set[int] = set()
    for event in claimed:  # claimed without the engine's receipt: not consumed
        if event.customer_id is not None and event.customer_id in seen:
            # A customer's later event reads the customer afresh, after the earlier one's effects.
            event._state.fields_cache.pop("customer", None)
        seen.add(event.customer_id or 0)
    with batch_scoped(workflows) as scope:
        scope.events = {event.pk: event for event in claimed}
        scope.objects = context_objects_load([event.payload or {} for event in claimed])
        # AUTOMATIONS_EVENT_SETS = False (not in base settings: a switch for comparing) turns the lane off.
        sets = getattr(django_settings, "AUTOMATIONS_EVENT_SETS", True)
        lane, alone = lane_split(claimed, scope) if sets else ([], claimed)
        if lane:
            try:
                with transaction.atomic():  # one savepoint for the whole lane
                    scope.consumed.extend(events_process_set(lane, scope))
            except Exception as error:
                if db_error_is_transient(error):
                    raise  # the whole batch rolls back and is retried
                # Something in the lane failed (a poison event, a failing action): its writes rolled back,
                # and its events are processed one by one, each in its own savepoint, as before.
                logger.warning("automations: %s events redone one by one: %s", len(lane), error)
                alone = claimed
        failed: list[int] = []
        for event in sorted(alone, key=lambda row: (row.customer_id or 0, row.pk)):
            try:
                with transaction.atomic():
                    domain_event_process(event_id=event.pk)
            except Exception as error:
                if db_error_is_transient(error):
                    raise  # the whole batch rolls back and is retried
                # A bug for this one event must not hold back the others: it stays pending (no receipt), counted
                # as failed in a batch, and the outbox sweep re-drives it on its own.
                logger.exception("automations: event %s not processed in its batch: %s", event.pk, error)
                failed.append(event.pk)
        if failed:
            # counted once per batch: a backlog batch counted its claim already, a fresh one did not
            DomainEvent.objects.filter(pk__in=failed).update(
                batch_claims=Greatest(F("batch_claims"), Value(1)), batch_claimed_at=None
            )
        if scope.consumed:
            # The engine's receipts commit with the effects they vouch for: one insert, one settle.
            DomainEventReceipt.objects.bulk_create(
                [DomainEventReceipt(event_id=pk, consumer=CONSUMER) for pk in scope.consumed],
                ignore_conflicts=True,
            )
            outbox.domain_events_settle(event_ids=scope.consumed)


def _batchable(workflows: list[Workflow]) -> bool:
    """True when every active workflow's actions (state tags' included) are transactional."""
    for workflow in workflows:
        assert workflow.current_version is not None  # workflows_active() selects those with one
        definition = workflow.current_version.definition
        for steps in (definition or {}).values():
            if not isinstance(steps, list):
                continue
            for _, step in definition_steps_walk(steps):
                spec = registry.action_get(step.get("action", "")) if isinstance(step, dict) else None
                if spec is not None and not spec.transactional:
                    return False
    return True
