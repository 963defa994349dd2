"""
Thin loyalty tasks: take ids, re-fetch, call one service; safe to run twice (lots are keyed by source).
`domain_event_consume` is loyalty's outbox consumer task (declared in `receivers.py`); `PERIODIC_JOBS` lists
the scheduled ones for `setup_schedules`.
"""

from apps.customers import outbox
from apps.customers.models import CustomerEvent, DomainEvent, Order
from loyalty_site.lib.tasks import retry_transient

from . import services
from .receivers import CONSUMER, CUSTOM_EVENT, ORDER_CREATED, ORDER_REVERSED, ORDER_UPDATED


def domain_event_consume(event_id: int) -> int:
    """
    Earn or take back the points of one outbox event, then record loyalty's receipt. Returns the points moved.

    A transient database error (lost connection, deadlock, serialization failure) is retried here with
    back-off; if it persists the task fails without a receipt and the outbox sweep drives the event again.
    Either way the points move once: lots are keyed by source and reversal is cumulative.
    """

    def consume() -> int:
        event = DomainEvent.objects.filter(pk=event_id).only("pk", "name", "payload").first()
        if event is None:
            return 0
        payload = event.payload or {}
        moved = 0
        if event.name == ORDER_CREATED:
            moved = order_earn_task(payload.get("order_id"))
        elif event.name in ORDER_REVERSED or event.name == ORDER_UPDATED:
            moved = order_reverse_task(payload.get("order_id"))
        elif event.name == CUSTOM_EVENT:
            moved = event_earn_task(payload.get("custom_event_id"))
        outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
        return moved

    return retry_transient(consume, what=f"loyalty: outbox event {event_id}")


def order_earn_task(order_id: int | None) -> int:
    if order_id is None:
        return 0
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return 0
    lots = services.order_points_earn(order=order)
    services.referral_qualify(customer=order.customer)
    membership = services.membership_for(order.customer)
    if membership is not None:
        services.tier_recalculate(membership=membership, cause=f"order:{order_id}")
    return sum(lot.amount for lot in lots)


def order_reverse_task(order_id: int | None) -> int:
    if order_id is None:
        return 0
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return 0
    # An edited order's points are kept by source against its edited plan (the proportional reversal of a
    # never-edited order would not see what an edit added or took back).
    if order.edited_at is not None:
        taken = abs(services.order_points_adjust(order=order))
    else:
        taken = services.order_points_reverse(order=order)
    membership = services.membership_for(order.customer)
    if membership is not None:
        services.tier_recalculate(membership=membership, cause=f"order:{order_id}")
    return taken


def event_earn_task(custom_event_id: int | None) -> int:
    if custom_event_id is None:
        return 0
    custom_event = CustomerEvent.objects.select_related("customer").filter(pk=custom_event_id).first()
    if custom_event is None:
        return 0
    lots = services.event_points_earn(custom_event=custom_event)
    membership = services.membership_for(custom_event.customer)
    if lots and membership is not None:
        services.tier_recalculate(membership=membership, cause=f"event:{custom_event_id}")
    return sum(lot.amount for lot in lots)


def activate_pending_task() -> int:
    return services.points_activate_due()


def expire_points_task() -> int:
    services.points_expiring_notify()
    return services.points_expire_due()


def recalculate_tiers_task() -> int:
    return services.tiers_recalculate_all()


# Declared here, applied by the engine's idempotent `setup_schedules` command:
# (name, function path, cron expression).
PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "loyalty: activate pending points",
        "func": "apps.loyalty.tasks.activate_pending_task",
        "cron": "*/15 * * * *",
    },
    {
        "name": "loyalty: expire points and send reminders",
        "func": "apps.loyalty.tasks.expire_points_task",
        "cron": "10 0 * * *",
    },
    {"name": "loyalty: recalculate tiers", "func": "apps.loyalty.tasks.recalculate_tiers_task", "cron": "30 0 * * *"},
]


def periodic_jobs() -> list[dict[str, str]]:
    return list(PERIODIC_JOBS)
