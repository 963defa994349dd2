"""Periodic jobs of the platform app (applied by `manage.py setup_schedules`)."""

from . import services


def idempotency_records_prune_task() -> int:
    return services.idempotency_records_prune()


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "platform: prune old Idempotency-Key records",
        "func": "apps.platform.tasks.idempotency_records_prune_task",
        "cron": "17 3 * * *",
    },
]
