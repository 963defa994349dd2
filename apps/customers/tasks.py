"""Periodic jobs of the customers app (applied by `manage.py setup_schedules`)."""

from . import services


def idempotency_records_prune_task() -> int:
    return services.idempotency_records_prune()


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "customers: prune old Idempotency-Key records",
        "func": "apps.customers.tasks.idempotency_records_prune_task",
        "cron": "17 3 * * *",
    },
]
