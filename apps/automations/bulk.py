# ruff: noqa: S608 - raw SQL here interpolates only table names from model meta; values are parameters.
"""
Bulk customer activity: scheduled (cron) and "run now" runs of a workflow over an audience of customers,
evaluated set-based in SQL, plus the daily `customer.birthday` trigger (set-based event emission).

How a bulk run works:

1. `bulk_run_start` (run now) or `bulk_schedules_tick` (a schedule slot fell due) creates one WorkflowRun
   of kind "bulk" pinned to the workflow's active version. The (workflow, slot) pair is unique, so a slot
   runs once however many clusters tick at the same moment; the workflow row is locked while checking that
   no other bulk run of it is still going (no overlap), and missed slots are not replayed: the next slot
   is always computed from now.
2. The customers' primary-key range is cut into chunks; one django-q2 task per chunk runs in parallel.
3. A chunk evaluates the audience with `condition_compile`, then walks the steps with the engine's step
   walker over SETS of customer ids: each if/then/else splits the set with one compiled query, and actions
   apply to the matched ids in set-based statements — tags through `tagging.services.tags_add_bulk` /
   `tags_remove_bulk`: on PostgreSQL ONE statement per chunk and tag action inserts the tags
   (`ON CONFLICT DO NOTHING`), their audit rows and their outbox rows.
   Nothing loops over customers one query at a time (only actions that are per-customer by nature,
   e-mails or points, run once per matched customer).
4. The chunk's counts are merged into the run's progress under a row lock in the same transaction as its
   effects, together with the chunk's number: a chunk re-delivered after a worker crash is a no-op, and
   concurrent chunks never lose each other's counts (the JSON is merged, not overwritten). On PostgreSQL
   that commit does not wait for its WAL flush (`_commit_without_flush_wait`: a crash loses a chunk whole,
   effects and progress together, and it is processed again).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from croniter import croniter
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.customers import outbox
from apps.customers.choices import DomainEventStatus
from apps.customers.models import Customer, DomainEvent
from apps.tagging import services as tag_services
from loyalty_site.lib import tasks as task_queue
from loyalty_site.lib.conditions import Scope, condition_compile
from loyalty_site.lib.errors import ConflictError, DomainError
from loyalty_site.lib.split import held_out, workflow_holdout_salt

from . import notify, registry
from .choices import RunKind, RunStatus, WorkflowStatus
from .engine import context_build, params_render, steps_walk
from .engine.split import split_partition
from .models import Workflow, WorkflowRun, WorkflowVersion

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.http import HttpRequest

    Actor = AbstractBaseUser | AnonymousUser | None

logger = logging.getLogger(__name__)

BULK_TRIGGER = "customer.bulk_activity"
BIRTHDAY_TRIGGER = "customer.birthday"
CHUNK_SIZE = 5_000
# A run whose chunks made no progress for this long gets its missing chunks re-enqueued by the tick.
STALL_AFTER = timedelta(minutes=10)


class BulkRunError(Exception):
    """A step a bulk run cannot perform (a wait, an unknown action)."""


def _version_definition(version: WorkflowVersion | None, workflow: Workflow) -> dict[str, Any]:
    return version.definition if version is not None else workflow.definition


def _version_audience(version: WorkflowVersion | None, workflow: Workflow) -> dict[str, Any] | None:
    if version is not None:
        return (version.settings or {}).get("audience")
    return workflow.audience


# --- Conditions ----------------------------------------------------------------------------------------


def _compile(condition: dict[str, Any] | None, *, now: datetime, scope: Scope | None = None) -> Q:
    if not condition:
        return Q()
    return condition_compile(condition, now=now, scope=scope)


def birthday_q(today: date) -> Q:
    """Customers whose birthday is `today`; in a non-leap year Feb 29 birthdays are celebrated on Feb 28."""
    q = Q(birthday__month=today.month, birthday__day=today.day)
    if today.month == 2 and today.day == 28 and not _is_leap(today.year):
        q |= Q(birthday__month=2, birthday__day=29)
    return q


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


# --- Progress ------------------------------------------------------------------------------------------


def _empty_progress(chunks: int) -> dict[str, Any]:
    return {
        "chunks_total": chunks,
        "chunks_done": 0,
        "done_chunks": [],
        "matched": 0,
        "processed": 0,
        "branches": {},
        "actions": {},
        "errors": 0,
        "error_messages": [],
    }


def _merge_counts(progress: dict[str, Any], counts: dict[str, Any]) -> None:
    progress["matched"] += counts["matched"]
    progress["processed"] += counts["processed"]
    progress["errors"] += counts["errors"]
    progress["error_messages"] = (progress["error_messages"] + counts["error_messages"])[:20]
    for key in ("held_out", "held_out_of_campaign"):
        if counts.get(key):
            progress[key] = progress.get(key, 0) + counts[key]
    for step_id, branch in counts["branches"].items():
        # then/else of a condition, or the branch names of an A/B split
        target = progress["branches"].setdefault(step_id, {})
        for name, count in branch.items():
            target[name] = target.get(name, 0) + count
    for step_id, count in counts["actions"].items():
        progress["actions"][step_id] = progress["actions"].get(step_id, 0) + count


def bulk_run_payload(run: WorkflowRun) -> dict[str, Any]:
    progress = dict(run.progress or {})
    progress.pop("done_chunks", None)  # bookkeeping, not progress
    progress.pop("chunks", None)
    return {
        "id": run.pk,
        "workflow": run.workflow_id,
        "status": run.status,
        "slot": run.slot,
        "progress": progress,
    }


# --- Starting runs ----------------------------------------------------------------------------------------


def _chunk_bounds() -> list[tuple[int, int]]:
    """
    [low, high) primary-key ranges holding CHUNK_SIZE customers each (the last one fewer), found in one
    scan of the primary-key index, so chunks stay even however sparse the ids are.
    """
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS position FROM {table}) AS numbered "
            "WHERE (position - 1) %% %s = 0 ORDER BY id",
            [CHUNK_SIZE],
        )
        starts = [row[0] for row in cursor.fetchall()]
        if not starts:
            return []
        cursor.execute(f"SELECT MAX(id) FROM {table}")
        highest = cursor.fetchone()[0]
    ends = [*starts[1:], highest + 1]
    return list(zip(starts, ends, strict=True))


def _no_overlap(workflow: Workflow) -> bool:
    """True when no bulk run of `workflow` is still queued or running (call with the workflow row locked)."""
    return not WorkflowRun.objects.filter(
        workflow=workflow, kind=RunKind.BULK, status__in=[RunStatus.PENDING, RunStatus.RUNNING]
    ).exists()


def _create_run(*, workflow: Workflow, slot: str, user: Actor = None, enqueue: bool = True) -> WorkflowRun:
    """Create the run row and enqueue its chunks after commit. Caller holds the workflow row lock."""
    version = workflow.active_version
    now = timezone.now()
    chunks = _chunk_bounds()
    progress = _empty_progress(len(chunks))
    progress["chunks"] = chunks
    progress["as_of"] = now.isoformat()
    fields: dict[str, Any] = {
        "workflow": workflow,
        "version": version,
        "kind": RunKind.BULK,
        "slot": slot,
        "status": RunStatus.RUNNING if chunks else RunStatus.SUCCEEDED,
        "progress": progress,
        "started_at": now,
    }
    if not chunks:
        fields["finished_at"] = now
    if user is not None and user.is_authenticated:
        fields["started_by"] = user
    run = WorkflowRun.objects.create(**fields)
    for index in range(len(chunks) if enqueue else 0):
        task_queue.enqueue_on_commit("apps.automations.bulk.bulk_chunk_task", run.pk, index)
    return run


@transaction.atomic
def bulk_run_start(*, workflow: Workflow, user: Actor = None, enqueue: bool = True) -> WorkflowRun:
    """
    Run now: start a bulk run of an active bulk-activity workflow. Refused (ConflictError) while another
    bulk run of the same workflow is still going.
    """
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if _workflow_trigger(workflow) != BULK_TRIGGER:
        raise DomainError("Only a bulk customer activity workflow can be run over its audience.", path="trigger")
    if workflow.status != WorkflowStatus.ACTIVE:
        raise DomainError("Activate the workflow before running it.", path="status")
    if not _no_overlap(workflow):
        raise ConflictError("A bulk run of this workflow is still going.")
    slot = f"manual:{timezone.now().strftime('%Y%m%dT%H%M%S')}:{uuid.uuid4().hex[:8]}"
    return _create_run(workflow=workflow, slot=slot, user=user, enqueue=enqueue)


def _workflow_trigger(workflow: Workflow) -> str:
    version = workflow.active_version
    return version.trigger if version is not None else workflow.trigger


def next_slot_after(cron: str, moment: datetime) -> datetime:
    return croniter(cron, moment).get_next(datetime)


def bulk_schedules_tick(*, now: datetime | None = None) -> list[int]:
    """
    Periodic: start the bulk runs whose schedule slot fell due. A slot that is due while the previous
    run is still going is recorded as skipped; missed slots are not replayed (the next slot is computed
    from now). Returns the ids of the runs created. Also re-enqueues stalled chunks.
    """
    now = now or timezone.now()
    created: list[int] = []
    due = Workflow.objects.filter(status=WorkflowStatus.ACTIVE, next_run_at__lte=now).exclude(schedule_cron="")
    for workflow_id in due.values_list("pk", flat=True):
        run_id = _tick_one(workflow_id, now)
        if run_id is not None:
            created.append(run_id)
    # Active scheduled workflows that never got a next_run_at (activated before a schedule was set).
    for workflow in Workflow.objects.filter(status=WorkflowStatus.ACTIVE, next_run_at__isnull=True).exclude(
        schedule_cron=""
    ):
        if _workflow_trigger(workflow) == BULK_TRIGGER:
            Workflow.objects.filter(pk=workflow.pk, next_run_at__isnull=True).update(
                next_run_at=next_slot_after(workflow.schedule_cron, now)
            )
    bulk_stalled_resume(now=now)
    return created


def _tick_one(workflow_id: int, now: datetime) -> int | None:
    try:
        with transaction.atomic():
            workflow = Workflow.objects.select_for_update().get(pk=workflow_id)
            if workflow.status != WorkflowStatus.ACTIVE or workflow.next_run_at is None or workflow.next_run_at > now:
                return None  # another cluster took this slot meanwhile
            if _workflow_trigger(workflow) != BULK_TRIGGER:
                return None
            # The published schedule: an edited, not yet re-activated cron does not apply.
            version = workflow.active_version
            cron = ((version.settings or {}) if version else {}).get("schedule_cron") or workflow.schedule_cron
            # The slot is the latest one due (not the stale next_run_at of a scheduler that was down).
            slot_at = croniter(cron, now + timedelta(seconds=1)).get_prev(datetime)
            slot = f"cron:{slot_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M')}"
            workflow.next_run_at = next_slot_after(cron, now)
            workflow.save(update_fields=["next_run_at"])
            if WorkflowRun.objects.filter(workflow=workflow, slot=slot).exists():
                return None
            if not _no_overlap(workflow):
                WorkflowRun.objects.create(
                    workflow=workflow,
                    version=workflow.active_version,
                    kind=RunKind.BULK,
                    slot=slot,
                    status=RunStatus.SKIPPED,
                    skip_reason="The previous bulk run of this workflow was still going.",
                    progress=_empty_progress(0),
                    started_at=now,
                    finished_at=now,
                )
                return None
            return _create_run(workflow=workflow, slot=slot).pk
    except IntegrityError:
        # The unique (workflow, slot) key: another cluster created this slot's run first.
        return None


def bulk_stalled_resume(*, now: datetime | None = None) -> int:
    """Re-enqueue the missing chunks of runs that made no progress for a while (a lost enqueue)."""
    now = now or timezone.now()
    stalled = WorkflowRun.objects.filter(kind=RunKind.BULK, status=RunStatus.RUNNING, updated_at__lt=now - STALL_AFTER)
    count = 0
    for run in stalled:
        done = set(run.progress.get("done_chunks", []))
        for index in range(run.progress.get("chunks_total", 0)):
            if index not in done:
                task_queue.enqueue_on_commit("apps.automations.bulk.bulk_chunk_task", run.pk, index)
                count += 1
        WorkflowRun.objects.filter(pk=run.pk).update(updated_at=now)
    return count


# --- Processing a chunk --------------------------------------------------------------------------------


def bulk_chunk_task(run_id: int, index: int) -> None:
    """django-q2 task: process chunk `index` of bulk run `run_id`; safe to run twice."""
    bulk_chunk_process(run_id=run_id, index=index)


def bulk_chunk_process(*, run_id: int, index: int) -> dict[str, Any] | None:
    run = WorkflowRun.objects.select_related("workflow", "version").get(pk=run_id)
    if run.status != RunStatus.RUNNING or index in run.progress.get("done_chunks", []):
        return None
    low, high = run.progress["chunks"][index]
    as_of = datetime.fromisoformat(run.progress["as_of"])
    definition = _version_definition(run.version, run.workflow)
    # Inside a caller's transaction (a rolled-back benchmark run, a test) the commit is the caller's, not ours.
    own_transaction = not connection.in_atomic_block
    try:
        with transaction.atomic():
            counts = _process(run, definition, low, high, as_of)
            if own_transaction:
                _deferred_checks_now()
            if not _progress_commit(run_id, index, counts):
                transaction.set_rollback(True)  # another worker committed this chunk first
                return None
            if own_transaction:
                _commit_without_flush_wait()
    except Exception as error:  # a bad chunk is counted, the others still run
        logger.exception("bulk run %s chunk %s failed", run_id, index)
        counts = _zero_counts()
        counts["errors"] = 1
        counts["error_messages"] = [f"chunk {index} ({low}-{high}): {error}"[:500]]
        with transaction.atomic():
            _progress_commit(run_id, index, counts)
    return counts


def _deferred_checks_now() -> None:
    """
    Fire the chunk's deferred foreign-key checks now, before `_progress_commit` takes the run's row lock, instead of
    at the COMMIT (PostgreSQL: `SET CONSTRAINTS ALL IMMEDIATE` runs every pending deferred check at once; Django
    declares its foreign keys `DEFERRABLE INITIALLY DEFERRED`). The checks are most of a committed chunk's extra cost
    (about 30 ms a chunk of 5,000 at 1M customers: five row-level checks per tagged customer, README *Generating
    data and committed bulk runs*); fired at the COMMIT they ran while this chunk held the run's row, so chunks
    processed at once — two workers, `run_workflow --wait --jobs N` — queued behind each other's checks. Fired
    here they run in parallel and the lock is held for the progress update and the COMMIT only. Same checks, same
    outcome: a violation (a customer or tag deleted under the chunk) raises here instead of at the COMMIT, and the
    chunk is rolled back and counted as failed either way. Only in the chunk's own transaction: inside a caller's
    (a rolled-back benchmark run, a test) the caller decides when its constraints are checked.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _commit_without_flush_wait() -> None:
    """
    Let the chunk's COMMIT return without waiting for its WAL flush (PostgreSQL's asynchronous commit, for this one
    transaction: `SET LOCAL`; its COMMIT went from 3.2 to 1.3 ms at 1M customers, README *Generating data and
    committed bulk runs*). Safe for exactly-once: the chunk's effects and its number in the run's progress commit in
    one transaction, so a server crash in the flush window (up to three `wal_writer_delay`s, 0.6 s by default) loses
    both together, never one without the other; the run then lacks that chunk and the tick's stalled-run resume
    processes it again. Nothing is ever half-applied or inconsistent (the WAL stays ordered: any later synchronous
    commit, on any connection, makes this one durable first). Not when the chunk registered after-commit work (a
    task sent to Redis, a message to deliver): something outside the database could act on a commit that a crash
    then takes back, so such a chunk waits for its flush as usual. (With the ORM broker the queue rows are part of
    the chunk's own commit, and a worker claims one with a synchronous commit of its own, which flushes this one
    first.)
    """
    if connection.vendor != "postgresql" or connection.run_on_commit:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")


def _zero_counts() -> dict[str, Any]:
    return {"matched": 0, "processed": 0, "errors": 0, "error_messages": [], "branches": {}, "actions": {}}


def _progress_commit(run_id: int, index: int, counts: dict[str, Any]) -> bool:
    """Merge the chunk's counts into the run under a row lock; False if the chunk was already done."""
    run = WorkflowRun.objects.select_for_update().get(pk=run_id)
    progress = run.progress
    if index in progress["done_chunks"]:
        return False
    progress["done_chunks"].append(index)
    progress["chunks_done"] += 1
    _merge_counts(progress, counts)
    fields = ["progress", "updated_at"]
    if progress["chunks_done"] >= progress["chunks_total"]:
        # A run with a failed chunk is failed: the other chunks' effects stay, the progress says which.
        run.status = RunStatus.FAILED if progress["errors"] else RunStatus.SUCCEEDED
        run.error = "; ".join(progress["error_messages"])[:2000]
        run.finished_at = timezone.now()
        fields += ["status", "error", "finished_at"]
    run.save(update_fields=fields)
    return True


def _process(run: WorkflowRun, definition: dict[str, Any], low: int, high: int, as_of: datetime) -> dict[str, Any]:
    counts = _zero_counts()
    # Figures over rows (windowed counts and sums) aggregate only this chunk's customers' rows.
    scope = Scope(low=low, high=high)
    base = Customer.objects.filter(pk__gte=low, pk__lt=high)
    audience = _run_audience(run, definition, as_of, scope)
    ids = list(base.filter(audience).order_by().values_list("pk", flat=True))
    counts["matched"] = len(ids)
    holdout = (run.version.settings if run.version else {}).get("holdout_percent") or 0
    if holdout:
        # The workflow's holdout gets nothing: counted, never walked (the same customers as event runs).
        kept = [pk for pk in ids if not held_out(workflow_holdout_salt(run.workflow_id), pk, holdout)]
        counts["held_out"] = len(ids) - len(kept)
        ids = kept
    if ids:
        steps_walk(definition.get("steps", []), _BulkVisitor(run, counts, as_of, scope), ids)
    counts["processed"] = len(ids)
    return counts


def _run_audience(run: WorkflowRun, definition: dict[str, Any], as_of: datetime, scope: Scope) -> Q:
    q = Q()
    audience = _version_audience(run.version, run.workflow)
    if audience:
        q &= _compile(audience, now=as_of, scope=scope)
    where = definition.get("trigger", {}).get("where")
    if where:
        q &= _compile(where, now=as_of, scope=scope)
    return q


class _BulkVisitor:
    """
    A bulk run walks the steps with the engine's walker over SETS of customer ids: a condition splits the set
    with one compiled query (both branches walked, each with its customers), an action applies to the whole
    set, a wait is refused.
    """

    def __init__(self, run: WorkflowRun, counts: dict[str, Any], as_of: datetime, scope: Scope) -> None:
        self.run = run
        self.counts = counts
        self.as_of = as_of
        self.scope = scope
        # Customers an action reported held out (a campaign's holdout): no later step of this run reaches them.
        self.stopped: set[int] = set()

    def _live(self, ids: list[int]) -> list[int]:
        return [pk for pk in ids if pk not in self.stopped] if self.stopped else ids

    def condition(self, step: dict[str, Any], path: str, ids: list[int]) -> Iterator[tuple[str, list[int]]]:
        ids = self._live(ids)
        matched = set(
            Customer.objects.filter(pk__in=ids)
            .filter(_compile(step["if"], now=self.as_of, scope=self.scope))
            .values_list("pk", flat=True)
        )
        then_ids = [pk for pk in ids if pk in matched]
        else_ids = [pk for pk in ids if pk not in matched]
        branch = self.counts["branches"].setdefault(step["id"], {"then": 0, "else": 0})
        branch["then"] += len(then_ids)
        branch["else"] += len(else_ids)
        for name, subset in (("then", then_ids), ("else", else_ids)):
            if subset:
                yield name, subset

    def split(self, step: dict[str, Any], path: str, ids: list[int]) -> Iterator[tuple[str, list[int]]]:
        ids = self._live(ids)
        parts = split_partition(step, path, workflow_id=self.run.workflow_id, ids=ids)
        counts = self.counts["branches"].setdefault(step.get("id") or path, {})
        for index, (branch, subset) in enumerate(zip(step["split"], parts, strict=True)):
            counts[branch["name"]] = counts.get(branch["name"], 0) + len(subset)
            if subset:
                yield f"split[{index}].steps", subset

    def wait(self, step: dict[str, Any], path: str, ids: list[int]) -> None:
        raise BulkRunError(f"{step['id']}: a bulk run cannot wait; use an event-triggered workflow.")

    def resumed(self, step: dict[str, Any], path: str, ids: list[int]) -> None:  # bulk runs never resume
        return None

    def action(self, step: dict[str, Any], path: str, ids: list[int]) -> None:
        ids = self._live(ids)
        if not ids:
            return
        before = len(self.stopped)
        affected = _apply_action(step, ids, self.run, self.as_of, self.stopped)
        self.counts["actions"][step["id"]] = self.counts["actions"].get(step["id"], 0) + affected
        if len(self.stopped) > before:
            self.counts["held_out_of_campaign"] = (
                self.counts.get("held_out_of_campaign", 0) + len(self.stopped) - before
            )


def _apply_action(step: dict[str, Any], ids: list[int], run: WorkflowRun, as_of: datetime, stopped: set[int]) -> int:
    name = step["action"]
    params = step.get("params", {})
    source_ref = f"bulk_run:{run.pk}"
    tag_names = params.get("tags", [])
    if name in {"customer.add_tags", "customer.remove_tags"} and not _is_dynamic(tag_names):
        if name == "customer.add_tags":
            return tag_services.tags_add_bulk(customer_ids=ids, names=tag_names, source_ref=source_ref)
        return tag_services.tags_remove_bulk(customer_ids=ids, names=tag_names, source_ref=source_ref)
    return _apply_per_customer(step, ids, run, as_of, stopped)


def _is_dynamic(names: Any) -> bool:
    items = [names] if isinstance(names, str) else list(names or [])
    return any(isinstance(item, str) and "{{" in item for item in items)


def _apply_per_customer(
    step: dict[str, Any], ids: list[int], run: WorkflowRun, as_of: datetime, stopped: set[int]
) -> int:
    """
    Actions without a set-based form (e-mail, points, webhooks...) and tags with dynamic parameters.
    The customers are read in one query; dynamic tags are rendered per customer in memory and then
    written set-based, one statement per distinct tag set; other actions run once per customer with
    an effect key unique per (run, step, customer), inside the chunk's transaction; a customer whose outcome
    says held out (a campaign's holdout) joins `stopped` and gets no later step.
    """
    spec = registry.action_get(step["action"])
    if spec is None or spec.run is None:
        raise BulkRunError(f"{step['id']}: unknown action {step['action']!r}.")
    cause = f"bulk_run:{run.pk}"
    extra = {"run_id": run.pk, "cause": cause, "workflow_id": run.workflow_id, "bulk": True}
    customers = list(Customer.objects.filter(pk__in=ids).order_by("pk"))
    if spec.name in notify.CHANNELS:
        # Messages: delivery rows queued set-based, sent by parallel tasks after the chunk commits.
        return notify.bulk_queue(
            spec,
            step,
            customers,
            run_id=run.pk,
            workflow_id=run.workflow_id,
            as_of=as_of,
            priority=run.workflow.message_priority,
        )
    if spec.name in {"customer.add_tags", "customer.remove_tags"}:
        groups: dict[tuple[str, ...], list[int]] = {}
        for customer in customers:
            context = context_build(customer=customer, now=as_of, extra=extra)
            rendered = params_render(spec, step.get("params", {}), context)
            groups.setdefault(tuple(rendered.get("tags", [])), []).append(customer.pk)
        write = tag_services.tags_add_bulk if spec.name == "customer.add_tags" else tag_services.tags_remove_bulk
        return sum(write(customer_ids=group, names=list(names), source_ref=cause) for names, group in groups.items())
    for customer in customers:
        context = context_build(customer=customer, now=as_of, extra=extra)
        rendered = params_render(spec, step.get("params", {}), context)
        outcome = spec.run(context, rendered, f"br{run.pk}:{step['id']}:{customer.pk}"[:100])
        if registry.held_out_reason(outcome):
            stopped.add(customer.pk)
    return len(customers)


# --- Birthday ------------------------------------------------------------------------------------------


def birthday_events_emit(*, today: date | None = None) -> int:
    """
    Daily: one `customer.birthday` outbox event per customer whose birthday is today, inserted with ONE
    `INSERT ... SELECT` (set-based) and only when some active workflow listens to birthdays. The events
    then take the engine's normal run path (conditions, waits, run limits, any action). The cause
    `birthday:<date>` makes a second tick on the same day a no-op.
    """
    today = today or timezone.localdate()
    if not Workflow.objects.filter(status=WorkflowStatus.ACTIVE, trigger=BIRTHDAY_TRIGGER).exists():
        return 0
    cause = f"birthday:{today.isoformat()}"
    customers = Customer.objects.filter(birthday_q(today)).exclude(
        pk__in=DomainEvent.objects.filter(name=BIRTHDAY_TRIGGER, cause=cause).values("customer_id")
    )
    sql, params = customers.order_by().values("pk").query.sql_with_params()
    events = DomainEvent._meta.db_table
    if connection.vendor == "postgresql":
        payload = "json_build_object('customer_id', c.id, 'date', %s::text)"
    else:
        payload = "json_object('customer_id', c.id, 'date', %s)"
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {events} (name, customer_id, payload, cause, status, created_at) "
                f"SELECT %s, c.id, {payload}, %s, %s, %s FROM {Customer._meta.db_table} AS c "
                f"WHERE c.id IN ({sql}) RETURNING id",
                [BIRTHDAY_TRIGGER, today.isoformat(), cause, DomainEventStatus.PENDING.value, timezone.now(), *params],
            )
            event_ids = [row[0] for row in cursor.fetchall()]
        # The outbox's normal path after commit: one engine task per birthday event (the sweep is the net).
        transaction.on_commit(lambda: outbox.domain_events_dispatch_ids(event_ids), robust=True)
    return len(event_ids)


def bulk_schedules_tick_task() -> None:
    bulk_schedules_tick()


def birthday_tick_task() -> None:
    birthday_events_emit()


def admin_action_run_now(modeladmin: ModelAdmin, request: HttpRequest, queryset: QuerySet[Workflow]) -> None:
    """Admin action for the Workflow changelist: start a bulk run of each selected bulk workflow now."""
    from django.contrib import messages

    started, refused = [], []
    for workflow in queryset:
        try:
            run = bulk_run_start(workflow=workflow, user=request.user)
            started.append(f"{workflow.name} (run #{run.pk})")
        except DomainError as error:
            refused.append(f"{workflow.name}: {error.message}")
    if started:
        modeladmin.message_user(request, f"Started {len(started)} bulk run(s): {', '.join(started)}.")
    if refused:
        modeladmin.message_user(request, "Not started — " + "; ".join(refused), level=messages.WARNING)


# Declared here, applied by the engine's idempotent `setup_schedules` command: (name, function path, cron).
PERIODIC_JOBS: list[dict[str, str]] = [
    # Every minute: start due schedule slots (one run per slot) and re-enqueue stalled chunks.
    {
        "name": "automations: bulk schedules",
        "func": "apps.automations.bulk.bulk_schedules_tick_task",
        "cron": "* * * * *",
    },
    # Hourly, so a scheduler that was down at midnight still sends today's birthdays; once per day per customer.
    {"name": "automations: birthdays", "func": "apps.automations.bulk.birthday_tick_task", "cron": "5 * * * *"},
]


def periodic_jobs() -> list[dict[str, str]]:
    return list(PERIODIC_JOBS)
