"""Thin messaging tasks: send due deliveries (delayed by quiet hours, retries), send a batch of a bulk run."""

from __future__ import annotations

from . import services


def deliveries_due_send_task() -> None:
    services.deliveries_due_send()


def deliveries_send_task(ids: list[int]) -> None:
    """Send a batch of queued deliveries (claimed first: safe to run twice)."""
    services.deliveries_send(ids=ids)


# Applied by `manage.py setup_schedules`: (name, function path, cron).
PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "messaging: send due deliveries",
        "func": "apps.customers.messaging.tasks.deliveries_due_send_task",
        "cron": "* * * * *",
    },
]
