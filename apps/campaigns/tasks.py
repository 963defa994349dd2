"""Periodic jobs of the campaigns app (applied by `manage.py setup_schedules`)."""

from . import services


def segments_refresh_task() -> int:
    return services.segments_refresh_all()


def reservations_release_task() -> int:
    from .promotions.services import reservations_release_expired

    return reservations_release_expired()


def vouchers_expiring_task() -> int:
    from .promotions.services import vouchers_expiring_announce

    return vouchers_expiring_announce()


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "campaigns: release expired promotion reservations",
        "func": "apps.campaigns.tasks.reservations_release_task",
        "cron": "* * * * *",
    },
    {
        "name": "campaigns: announce expiring vouchers",
        "func": "apps.campaigns.tasks.vouchers_expiring_task",
        "cron": "0 8 * * *",
    },
    {
        "name": "campaigns: refresh segments",
        "func": "apps.campaigns.tasks.segments_refresh_task",
        "cron": "*/30 * * * *",
    },
]
