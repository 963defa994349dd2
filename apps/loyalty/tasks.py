"""
Thin loyalty tasks: take ids, re-fetch, call one service; safe to run twice (lots are keyed by source).
Receivers in `receivers.py` enqueue them; `PERIODIC_JOBS` lists the scheduled ones for `setup_schedules`.
"""

from django.conf import settings
from django.db import transaction

from apps.customers.models import CustomerEvent, Order

from . import services


def enqueue(func: str, *args: object) -> None:
    """Enqueue a task after commit (inline when LOYALTY_TASKS_SYNC is set, e.g. in tests or demos)."""
    if getattr(settings, "LOYALTY_TASKS_SYNC", False):
        transaction.on_commit(lambda: _run_inline(func, *args))
        return
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(func, *args, group="loyalty"))


def _run_inline(func: str, *args: object) -> None:
    from django.utils.module_loading import import_string

    import_string(func)(*args)


def order_earn_task(order_id: int) -> int:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return 0
    lots = services.order_points_earn(order=order)
    services.referral_qualify(customer=order.customer)
    membership = services.membership_for(order.customer)
    if membership is not None:
        services.tier_recalculate(membership=membership, cause=f"order:{order_id}")
    return sum(lot.amount for lot in lots)


def order_reverse_task(order_id: int) -> int:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return 0
    taken = services.order_points_reverse(order=order)
    membership = services.membership_for(order.customer)
    if membership is not None:
        services.tier_recalculate(membership=membership, cause=f"order:{order_id}")
    return taken


def event_earn_task(custom_event_id: int) -> int:
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
