"""
Thin loyalty tasks: take ids, re-fetch, call one service; safe to run twice (lots are keyed by source).
`domain_event_consume` is loyalty's outbox consumer task (declared in `receivers.py`); `PERIODIC_JOBS` lists
the scheduled ones for `setup_schedules`.
"""

from . import services


def domain_event_consume(event_id: int) -> int:
    """
    Loyalty's outbox consumer task: earn or take back the points of this event and record loyalty's receipt — on
    PostgreSQL with a batch of other pending events claimed together (`services.domain_events_earn_batch`; the
    event itself may be in another worker's batch). Returns the points this task moved.

    A transient database error (lost connection, deadlock, serialization failure) is retried with back-off; if it
    persists the task fails without a receipt and the outbox sweep drives the event again. Either way the points
    move once: an event is earned under its claim lock after checking its receipt, which commits with the points.
    """
    return services.domain_events_earn_batch(event_id=event_id)


def domain_events_drain() -> int:
    """
    Loyalty's drain (the outbox's coalescing on PostgreSQL): earn batches of pending events until none is left
    (`services.domain_events_earn_drain`, bounded in time). Returns the points moved.
    """
    return services.domain_events_earn_drain()


def order_earn_task(order_id: int | None) -> int:
    return services.order_earn(order_id)


def order_reverse_task(order_id: int | None) -> int:
    return services.order_take_back(order_id)


def event_earn_task(custom_event_id: int | None) -> int:
    return services.custom_event_earn(custom_event_id)


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
