"""Record a trigger-worthy write in the outbox and announce it after commit."""

from typing import Any

from django.db import transaction
from django.dispatch import Signal

from .models import Customer, DomainEvent


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
    Insert the outbox row inside the caller's transaction, then send `signal` once after commit.

    Must be called inside `transaction.atomic`; if the transaction rolls back, neither the row nor
    the signal survives.
    """
    event = DomainEvent.objects.create(name=name, customer=customer, payload=payload, cause=cause[:64])
    transaction.on_commit(lambda: signal.send(sender=sender, event=event, customer=customer, **objects), robust=True)
    return event
