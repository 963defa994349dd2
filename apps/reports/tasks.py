"""Thin reports tasks; `PERIODIC_JOBS` declares the rollup refresh for `setup_schedules`."""

from . import services


def rollups_refresh_task() -> int:
    """Recompute the days changed since the last refresh; returns how many days were written."""
    return len(services.rollups_refresh().days)


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "reports: refresh the daily rollups",
        "func": "apps.reports.tasks.rollups_refresh_task",
        "cron": "*/10 * * * *",
    },
]
