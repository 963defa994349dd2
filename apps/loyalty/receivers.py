"""
Loyalty earning as an outbox consumer (`apps.customers.outbox`): orders earn, cancellations and refunds
take back, named custom events earn fixed points. After commit the outbox enqueues
`tasks.domain_event_consume(event_id)` for these events — or records loyalty's receipt at once when there is
nothing to earn (no active program, no earning rule for that custom event), saving a queue round trip.
"""

from django.conf import settings
from django.db import connection

from apps.customers.models import DomainEvent
from apps.customers.outbox import OutboxConsumer, outbox_consumer_register
from loyalty_site.lib.hot_queries import ExistsCompiled

from .choices import ReferralStatus, RuleKind
from .models import EarningRule, PointLot, Program, Referral

CONSUMER = "loyalty"
ORDER_CREATED = "order.created"
ORDER_REVERSED = ("order.cancelled", "order.refunded")
ORDER_UPDATED = "order.updated"  # an order edited after it was placed: its points follow (order_points_adjust)
CUSTOM_EVENT = "event.custom"


def _program_active() -> bool:
    return Program.objects.filter(is_active=True).exists()


# Asked for every custom event written (each single-event POST): compiled once, run with the event's name.
_event_earns = ExistsCompiled(
    lambda name: EarningRule.objects.filter(kind=RuleKind.FIXED_EVENT, event_name=name, is_active=True), arity=1
)


def event_wanted(event: DomainEvent) -> bool:
    """Whether `tasks.domain_event_consume` could change anything for this event (else: receipt at once)."""
    payload = event.payload or {}
    if event.name == CUSTOM_EVENT:
        # Most custom events earn nothing: one indexed lookup here saves a queue round trip per event.
        return _event_earns(payload.get("event_name", ""))
    if event.name == ORDER_CREATED:
        # Earning and tiers need an active program; a referral waiting for a first purchase does not.
        return (
            _program_active()
            or Referral.objects.filter(referee_id=event.customer_id, status=ReferralStatus.REGISTERED).exists()
        )
    order_id = payload.get("order_id")
    return _program_active() or (order_id is not None and PointLot.objects.filter(order_id=order_id).exists())


def event_wanted_key(event: DomainEvent) -> tuple[str, str] | None:
    """Custom events of one name get one answer (the earning rule lookup); the others are asked one by one."""
    if event.name == CUSTOM_EVENT:
        return (CUSTOM_EVENT, (event.payload or {}).get("event_name", ""))
    return None


def connect() -> None:
    outbox_consumer_register(
        OutboxConsumer(
            name=CONSUMER,
            task="apps.loyalty.tasks.domain_event_consume",
            events=frozenset({ORDER_CREATED, *ORDER_REVERSED, ORDER_UPDATED, CUSTOM_EVENT}),
            wants=event_wanted,
            wants_key=event_wanted_key,
            # On PostgreSQL with batches the events go to one drain task at a time, not one task each.
            drain="apps.loyalty.tasks.domain_events_drain",
            drains=_drains,
        )
    )


def _drains() -> bool:
    return connection.vendor == "postgresql" and settings.LOYALTY_EVENT_BATCH > 1
