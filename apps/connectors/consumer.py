"""
Unsubscribes pushed to the shops, as an outbox consumer (`apps.customers.outbox`): when a withdrawal of
marketing consent commits here (`customer.unsubscribed`: unsubscribe link, API, console, import), the outbox
enqueues `consume(event_id)` if some connection that pushes unsubscribes knows the customer (else the receipt is
recorded at once, no task). `consume` queues the pushes (`Push` rows: our outbound outbox, once per event), records
the receipt, and queues one send task per push; a push that fails is retried by the periodic sender with back-off.

A confirmed double opt-in (`customer.consent_confirmed`) is pushed at once the same way: the shops that push
marketing consent and know the customer collect their new grants now (`pushes_collect`, the periodic collector's
own code: the grant's push is queued once whichever runs first) and the customer's subscribe pushes are sent.
"""

from __future__ import annotations

from apps.customers import outbox
from apps.customers.models import DomainEvent
from apps.customers.outbox import OutboxConsumer, outbox_consumer_register
from loyalty_site.lib import tasks as task_queue
from loyalty_site.lib.tasks import retry_transient

from .services.push import (
    CONFIRMED,
    UNSUBSCRIBED,
    confirmed_pushes_queue,
    confirmed_targets,
    unsubscribe_pushes_queue,
    unsubscribe_targets,
)

CONSUMER = "connectors"
SEND_TASK = "apps.connectors.tasks.push_send_task"


def event_wanted(event: DomainEvent) -> bool:
    """One indexed query: a connection that pushes consent knows this customer (and did not send it)."""
    if event.name == CONFIRMED:
        return bool(confirmed_targets(event))
    return bool(unsubscribe_targets(event))


def consume(event_id: int) -> int:
    """Queue the event's unsubscribe pushes and their send tasks, then record the receipt. Returns how many."""

    def run() -> int:
        event = DomainEvent.objects.filter(pk=event_id).first()
        if event is None:
            return 0
        if event.name == CONFIRMED:
            pushes = confirmed_pushes_queue(event=event)
        else:
            pushes = unsubscribe_pushes_queue(event=event)
        outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
        for push in pushes:
            task_queue.enqueue_on_commit(SEND_TASK, push.pk)
        return len(pushes)

    return retry_transient(run, what=f"connectors: outbox event {event_id}")


def connect() -> None:
    outbox_consumer_register(
        OutboxConsumer(
            name=CONSUMER,
            task="apps.connectors.consumer.consume",
            events=frozenset({UNSUBSCRIBED, CONFIRMED}),
            wants=event_wanted,
        )
    )
