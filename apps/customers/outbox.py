"""
The outbox: the one path from a trigger-worthy write to everything that reacts to it.

1. A service inserts a `DomainEvent` inside its own transaction (`domain_event_emit`, or set-based
   inserts for bulk writes); if the transaction rolls back, nothing survives.
2. In the same transaction the event is handed to every **consumer** of its name: the consumer's task
   is enqueued with the event id (`enqueue_on_commit`: with the ORM broker a queue row of the same commit)
   — or, when the consumer has nothing to do for such an event right now (no workflow listens, no earning
   rule matches), its receipt is recorded at once without a queue round trip; an event no consumer wants
   is written `processed`. Set-based inserts hand theirs over after commit (`domain_events_dispatch`).
   After commit the domain signal announces the event (signals only announce).
3. Each consumer's task processes the event idempotently and records a `DomainEventReceipt`
   (`domain_event_consumed`); the event becomes `processed` once every consumer of its name has one.
4. The periodic `outbox_sweep` hands each event still pending after a grace minute to the consumers
   without a receipt: a process dying between commit and enqueue, a lost or failed task, a worker
   killed mid-way — nothing is lost, and consumers being idempotent, nothing happens twice.

**Drains instead of one task per event** (issue 12). A consumer that claims its pending events in batches (the
engine, loyalty: PostgreSQL, batch > 1) declares a `drain` task: a task with no argument that claims and
processes batches of its pending events until none is left (bounded in time, asking for another drain when a
batch came back full). Its per-event task is then coalesced (`loyalty_site.lib.tasks.task_coalesce`): after a
write's commit the outbox sends the consumer's drain only when no drain of it is queued and not yet started,
which an `OutboxDrain` row marks (one read when it is; an insert and the send when it is not; with the ORM
broker the marker and the drain's queue row commit together). The ordering argument:

- a drain deletes its consumer's marker (committed) before its first claim;
- a writer checks the marker only after its own commit. If it finds the marker, the drain it stands for has not
  deleted it yet, so that drain's claims all begin after the writer's commit and see its event; if it finds
  none, it sends a new drain, which claims after the commit too. An event committed while a drain is at work is
  thus picked up by that drain's next claim or by the new drain — never left to the sweep;
- a drain whose claim came back short but not empty lingers (`loyalty_site.lib.tasks.drain_run`): it sets the
  marker itself (`outbox_drain_linger`, held by "lingering"), sleeps `tasks.DRAIN_LINGER`, deletes it and claims
  again. The writes of that moment find the marker (one read each: no insert, no send) and that claim takes them
  all. The rule that keeps every event claimed: whoever deletes the marker claims after deleting it;
- a marker older than `DRAIN_STALE` (its drain lost with a broker, a worker killed before the drain started;
  `LINGER_STALE` for a lingering drain's) is taken over by the next writer, who sends a new drain; a drain too
  many only finds nothing to claim.

Exactly once is the consumers' business as before (a receipt commits with its effects, claims are disjoint);
the sweep re-drives the events a drain cannot take (a batch failed on them: they go alone) with the per-event
task, not coalesced. SQLite, `AUTOMATIONS_EVENT_BATCH=1` / `LOYALTY_EVENT_BATCH=1` and `TASKS_SYNC` keep one
task per event.

Consumers are declared by the apps that own them, in their `AppConfig.ready()` (the way apps register
their admin classes), with `outbox_consumer_register`. This module imports no app above `customers`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.dispatch import Signal
from django.utils import timezone

from loyalty_site.lib import tasks as task_queue

from .choices import DomainEventStatus, OutboxDrainHolder
from .models import Customer, DomainEvent, DomainEventReceipt, OutboxDrain
from .signals import TRIGGER_NAMES, customer_updated

# An event still pending this long after its commit was not (fully) processed: the sweep re-drives it.
OUTBOX_GRACE = timedelta(minutes=1)
SWEEP_BATCH = 5000
# A drain marked queued this long ago without having started is presumed lost: the next writer sends another.
DRAIN_STALE = timedelta(seconds=10)
# A lingering drain's mark this old (it sleeps `tasks.DRAIN_LINGER`, 0.05 s) is presumed lost with its worker.
LINGER_STALE = timedelta(seconds=2)


@dataclass(frozen=True)
class OutboxConsumer:
    """
    Something that must process outbox events exactly once (in effect): the workflow engine, loyalty earning.

    - `task`: dotted path of the django-q2 task taking the event id; it calls `domain_event_consumed`.
    - `events`: the event names it consumes (None: every event).
    - `listens(name)`: cheap, per name — False when it has nothing to do for such events right now
      (also used before set-based inserts, to skip writing events nobody would consume).
    - `wants(event)`: optional, per event — False to record the receipt at once instead of a task.
    - `wants_key(event)`: optional — events with the same key (not None) get the same `wants` answer, so a
      set-based writer asks once per key instead of once per event.
    - `drain`: optional, dotted path of a task with no argument that processes every pending event of the
      consumer in batches, calling `outbox_drain_started` before its first claim; with `drains()` true (now),
      the consumer's events are handed to that drain instead of one `task` each (see the module).
    """

    name: str
    task: str
    events: frozenset[str] | None = None
    listens: Callable[[str], bool] | None = None
    wants: Callable[[DomainEvent], bool] | None = None
    wants_key: Callable[[DomainEvent], Hashable | None] | None = None
    drain: str | None = None
    drains: Callable[[], bool] | None = None

    def consumes(self, name: str) -> bool:
        return self.events is None or name in self.events


_consumers: dict[str, OutboxConsumer] = {}


def outbox_consumer_register(consumer: OutboxConsumer) -> None:
    """Declare a consumer (from its app's `ready()`); registering the same name again replaces it."""
    _consumers[consumer.name] = consumer
    coalescing = None
    if consumer.drain is not None:
        coalescing = task_queue.Coalescing(
            drain=consumer.drain,
            active=consumer.drains or (lambda: True),
            queued=lambda: outbox_drain_queued(consumer.name),
            request=lambda: outbox_drain_request(consumer.name),
            started=lambda: outbox_drain_started(consumer.name),
            linger=lambda: outbox_drain_linger(consumer.name),
        )
    task_queue.task_coalesce(consumer.task, coalescing)


# --- Drains --------------------------------------------------------------------------------------------

_DRAIN_MARK_SQL = """
    INSERT INTO {table} (consumer, queued_at, holder) VALUES (%s, %s, %s)
    ON CONFLICT (consumer) DO UPDATE SET queued_at = EXCLUDED.queued_at, holder = EXCLUDED.holder
    WHERE {table}.queued_at < (CASE WHEN {table}.holder = %s THEN %s ELSE %s END)
    RETURNING 1
"""


def outbox_drain_live(queued_at: datetime, holder: str, now: datetime) -> bool:
    """True while a mark set at `queued_at` by `holder` is held; False once stale (the next writer takes it over)."""
    stale = LINGER_STALE if holder == OutboxDrainHolder.LINGERING else DRAIN_STALE
    return queued_at > now - stale


def outbox_drain_queued(consumer: str, *, now: datetime | None = None) -> bool:
    """
    After a write's commit: True when `consumer`'s mark is held (not stale) — by a drain queued and not started, or
    by a drain lingering — so its holder's next claim will see the write. Under load nearly always: one plain read,
    no write, no lock.
    """
    now = now or timezone.now()
    table = connection.ops.quote_name(OutboxDrain._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT queued_at, holder FROM {table} WHERE consumer = %s", [consumer])  # noqa: S608
        row = cursor.fetchone()
    return row is not None and outbox_drain_live(row[0], row[1], now)


def _drain_mark(consumer: str, holder: str, now: datetime | None) -> bool:
    now = now or timezone.now()
    table = connection.ops.quote_name(OutboxDrain._meta.db_table)
    with connection.cursor() as cursor:
        # Of two at once, one gets the row back (and holds the mark); a stale mark is taken over.
        cursor.execute(
            _DRAIN_MARK_SQL.format(table=table),
            [consumer, now, holder, OutboxDrainHolder.LINGERING, now - LINGER_STALE, now - DRAIN_STALE],
        )
        return cursor.fetchone() is not None


def outbox_drain_request(consumer: str, *, now: datetime | None = None) -> bool:
    """
    After a write's commit (outside its transaction, or in the one that queues the drain with the ORM broker):
    mark a drain of `consumer` queued unless the mark is held (a stale mark is taken over). True when this call
    set the mark — the caller sends the drain; False when someone else holds it.
    """
    return _drain_mark(consumer, OutboxDrainHolder.QUEUED, now)


def outbox_drain_linger(consumer: str, *, now: datetime | None = None) -> bool:
    """
    A drain whose claim came back short takes its consumer's mark for a moment (`tasks.drain_run`): writes that
    find it send no drain, since this drain clears it and claims once more. True when it holds the mark; False
    when a queued (or another lingering) drain holds it — that one claims next.
    """
    return _drain_mark(consumer, OutboxDrainHolder.LINGERING, now)


def outbox_drain_started(consumer: str) -> None:
    """
    Before a drain's claim (its first, and the one after lingering), in a commit of its own: clear its consumer's
    mark, whoever holds it, so that every write committing from now on sends a new drain (or finds a new mark);
    the claim that follows sees every write that found the mark. One statement in autocommit (the ORM's delete
    would wrap it in BEGIN … COMMIT: three round trips, twice per lingering drain's cycle).
    """
    table = connection.ops.quote_name(OutboxDrain._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE consumer = %s", [consumer])  # noqa: S608


def outbox_consumers(name: str | None = None) -> list[OutboxConsumer]:
    """The registered consumers (of events called `name`, when given), in registration order."""
    return [consumer for consumer in _consumers.values() if name is None or consumer.consumes(name)]


def domain_event_listened(name: str) -> bool:
    """True when some consumer would process an event called `name` now (bulk writers skip the rest)."""
    return any(consumer.listens is None or consumer.listens(name) for consumer in outbox_consumers(name))


# --- Emitting ------------------------------------------------------------------------------------------


def domain_event_emit(
    *,
    signal: Signal,
    name: str,
    customer: Customer | None,
    payload: dict[str, Any],
    cause: str = "",
    sender: type,
    **objects: Any,
) -> DomainEvent:
    """
    Insert the outbox row inside the caller's transaction; after commit, hand it to its consumers and send
    `signal` once.

    Must be called inside `transaction.atomic`; if the transaction rolls back, neither the row nor
    the signal survives.
    """
    event = DomainEvent(name=name, customer=customer, payload=payload, cause=cause[:64])
    # Who consumes it is decided now, inside the writer's transaction: the receipts of consumers with nothing
    # to do, the consumers' tasks (with the ORM broker, queue rows of this same commit) and, when no consumer
    # wants it, the event written `processed` at once — one commit per write, nothing to settle afterwards.
    wanting, idle = _consumers_split(event)
    if not wanting:
        event.status = DomainEventStatus.PROCESSED
        event.processed_at = timezone.now()
    event.save(force_insert=True)
    if wanting and idle:
        DomainEventReceipt.objects.bulk_create([DomainEventReceipt(event=event, consumer=name) for name in idle])
    for consumer in wanting:
        task_queue.enqueue_on_commit(consumer.task, event.pk)
    transaction.on_commit(lambda: signal.send(sender=sender, event=event, customer=customer, **objects), robust=True)
    return event


def customer_event_emit(
    *, signal: Signal, customer: Customer, cause: str = "", payload: dict[str, Any] | None = None, **objects: Any
) -> DomainEvent:
    """
    A customer's own event (registered, activated, updated, unsubscribed, consent confirmed) through
    `domain_event_emit`: named after `signal` (`signals.TRIGGER_NAMES`), its payload the customer's id and
    `payload`, sent by `Customer` with `objects`.
    """
    return domain_event_emit(
        signal=signal,
        name=TRIGGER_NAMES[signal],
        customer=customer,
        payload={"customer_id": customer.pk, **(payload or {})},
        cause=cause,
        sender=Customer,
        **objects,
    )


def customer_updated_emit(*, customer: Customer, fields: Iterable[str], cause: str = "") -> DomainEvent | None:
    """
    `customer.updated` with the changed fields' names (sorted, in the payload and the signal), only when someone
    listens (a workflow on it, a state tag reading these fields): the profile services and consent's mirror of
    `accepts_marketing` both announce through here.
    """
    if not domain_event_listened("customer.updated"):
        return None
    names = sorted(fields)
    return customer_event_emit(
        signal=customer_updated, customer=customer, cause=cause, payload={"fields": names}, fields=list(names)
    )


def domain_events_emit_bulk(
    *,
    signal: Signal,
    name: str,
    entries: Sequence[tuple[Customer | None, dict[str, Any], dict[str, Any]]],
    cause: str = "",
    sender: type,
) -> list[DomainEvent]:
    """
    `domain_event_emit` for many events of one name at once, inside the caller's transaction: the consumers'
    "listens" asked once, their "wants" once per `wants_key`, then ONE insert for the outbox rows, one for the
    idle consumers' receipts and one per consumer for the queue rows (ORM broker; with Redis the tasks are sent
    after commit). `entries`: (customer, payload, objects for the signal) per event. After commit, the signal
    is sent once per event, as `domain_event_emit` does.
    """
    if not entries:
        return []
    consumers = outbox_consumers(name)
    listening = {consumer.name: consumer.listens is None or consumer.listens(name) for consumer in consumers}
    answers: dict[tuple[str, Hashable], bool] = {}
    now = timezone.now()
    events: list[DomainEvent] = []
    wanted_by: list[list[OutboxConsumer]] = []
    idle_of: list[list[str]] = []
    for customer, payload, _objects in entries:
        event = DomainEvent(name=name, customer=customer, payload=payload, cause=cause[:64])
        wanting: list[OutboxConsumer] = []
        idle: list[str] = []
        for consumer in consumers:
            if listening[consumer.name] and _wants(consumer, event, answers):
                wanting.append(consumer)
            else:
                idle.append(consumer.name)
        if not wanting:
            event.status = DomainEventStatus.PROCESSED
            event.processed_at = now
        events.append(event)
        wanted_by.append(wanting)
        idle_of.append(idle)
    DomainEvent.objects.bulk_create(events)
    receipts = [
        DomainEventReceipt(event=event, consumer=consumer)
        for event, wanting, idle in zip(events, wanted_by, idle_of, strict=True)
        if wanting
        for consumer in idle
    ]
    if receipts:
        DomainEventReceipt.objects.bulk_create(receipts)
    for consumer in consumers:
        calls = [(event.pk,) for event, wanting in zip(events, wanted_by, strict=True) if consumer in wanting]
        task_queue.enqueue_many_on_commit(consumer.task, calls)

    def announce() -> None:
        for event, (customer, _payload, objects) in zip(events, entries, strict=True):
            signal.send(sender=sender, event=event, customer=customer, **objects)

    transaction.on_commit(announce, robust=True)
    return events


def _wants(consumer: OutboxConsumer, event: DomainEvent, answers: dict[tuple[str, Hashable], bool]) -> bool:
    if consumer.wants is None:
        return True
    key = consumer.wants_key(event) if consumer.wants_key is not None else None
    if key is None:
        return consumer.wants(event)
    if (consumer.name, key) not in answers:
        answers[(consumer.name, key)] = consumer.wants(event)
    return answers[(consumer.name, key)]


def _consumers_split(event: DomainEvent) -> tuple[list[OutboxConsumer], list[str]]:
    """The consumers of this (not yet saved) event that want it now, and the names of those that do not."""
    wanting: list[OutboxConsumer] = []
    idle: list[str] = []
    for consumer in outbox_consumers(event.name):
        if (consumer.listens is None or consumer.listens(event.name)) and (
            consumer.wants is None or consumer.wants(event)
        ):
            wanting.append(consumer)
        else:
            idle.append(consumer.name)
    return wanting, idle


def domain_events_dispatch(events: Sequence[DomainEvent]) -> None:
    """
    Hand committed events to their consumers: enqueue each consumer's task, or record its receipt at once
    when it has nothing to do for that event. Best effort: whatever is lost here, the sweep re-drives.
    """
    receipts: list[DomainEventReceipt] = []
    by_name: dict[str, list[DomainEvent]] = defaultdict(list)
    for event in events:
        by_name[event.name].append(event)
    for name, group in by_name.items():
        for consumer in outbox_consumers(name):
            listening = consumer.listens is None or consumer.listens(name)
            for event in group:
                if listening and (consumer.wants is None or consumer.wants(event)):
                    task_queue.enqueue_on_commit(consumer.task, event.pk)
                else:
                    receipts.append(DomainEventReceipt(event_id=event.pk, consumer=consumer.name))
    if receipts:
        DomainEventReceipt.objects.bulk_create(receipts, ignore_conflicts=True)
    domain_events_settle(event_ids=[event.pk for event in events])


def domain_events_dispatch_ids(event_ids: Iterable[int]) -> None:
    """`domain_events_dispatch` for events inserted set-based (their ids)."""
    ids = list(event_ids)
    for start in range(0, len(ids), SWEEP_BATCH):
        batch = list(DomainEvent.objects.filter(pk__in=ids[start : start + SWEEP_BATCH]).order_by("pk"))
        domain_events_dispatch(batch)


# --- Consuming -----------------------------------------------------------------------------------------


def domain_event_consumed(*, event_id: int, consumer: str) -> None:
    """
    Record that `consumer` processed the event (call it after the effects committed), then mark the event
    processed if every consumer has. Idempotent.
    """
    DomainEventReceipt.objects.bulk_create(
        [DomainEventReceipt(event_id=event_id, consumer=consumer)], ignore_conflicts=True
    )
    # Checked after this receipt's commit: of two consumers finishing at once, the later sees both.
    domain_events_settle(event_ids=[event_id])


def domain_event_receipted(*, event_id: int, consumer: str) -> bool:
    return DomainEventReceipt.objects.filter(event_id=event_id, consumer=consumer).exists()


def domain_events_settle(*, event_ids: Sequence[int], now: datetime | None = None) -> int:
    """Mark processed the pending events among `event_ids` whose every consumer holds a receipt."""
    if not event_ids:
        return 0
    now = now or timezone.now()
    names = DomainEvent.objects.filter(pk__in=event_ids, status=DomainEventStatus.PENDING).values_list(
        "name", flat=True
    )
    settled = 0
    for name in set(names):
        consumers = [consumer.name for consumer in outbox_consumers(name)]
        pending = DomainEvent.objects.filter(pk__in=event_ids, name=name, status=DomainEventStatus.PENDING)
        if consumers:
            complete = (
                DomainEventReceipt.objects.filter(event_id__in=event_ids, consumer__in=consumers)
                .values("event_id")
                .annotate(count=Count("pk"))
                .filter(count__gte=len(consumers))
                .values("event_id")
            )
            pending = pending.filter(pk__in=complete)
        settled += pending.update(status=DomainEventStatus.PROCESSED, processed_at=now)
    return settled


# --- The sweep -----------------------------------------------------------------------------------------


def outbox_sweep(*, now: datetime | None = None) -> int:
    """
    Periodic: re-drive events left pending for more than OUTBOX_GRACE — enqueue the task of every consumer
    without a receipt (whether it listens or not: the task decides) and settle the events whose consumers
    are all done. Returns how many events were re-driven.
    """
    now = now or timezone.now()
    events = list(
        DomainEvent.objects.filter(status=DomainEventStatus.PENDING, created_at__lt=now - OUTBOX_GRACE)
        .order_by("pk")
        .only("pk", "name")[:SWEEP_BATCH]
    )
    if not events:
        return 0
    receipts = set(
        DomainEventReceipt.objects.filter(event_id__in=[event.pk for event in events]).values_list(
            "event_id", "consumer"
        )
    )
    redriven = 0
    complete: list[int] = []
    for event in events:
        missing = [consumer for consumer in outbox_consumers(event.name) if (event.pk, consumer.name) not in receipts]
        if not missing:
            complete.append(event.pk)
            continue
        for consumer in missing:
            # this event's own task, not a drain: a drain leaves alone the events a batch already failed on
            task_queue.enqueue_on_commit(consumer.task, event.pk, coalesce=False)
        redriven += 1
    domain_events_settle(event_ids=complete, now=now)
    return redriven
