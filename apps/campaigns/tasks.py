"""Periodic jobs of the campaigns app (applied by `manage.py setup_schedules`)."""

from . import services


def segments_refresh_task() -> int:
    return services.segments_refresh_all()


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "campaigns: refresh segments",
        "func": "apps.campaigns.tasks.segments_refresh_task",
        "cron": "*/30 * * * *",
    },
]
