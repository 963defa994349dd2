"""Apply every periodic job declared in code as a django-q2 Schedule (idempotent)."""

from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

EXTRA_MODULES = ("apps.automations.bulk", "apps.customers.messaging.tasks")


def periodic_jobs() -> list[dict[str, str]]:
    """The PERIODIC_JOBS lists of every installed app's `tasks` module (and the bulk module)."""
    modules = [f"{config.name}.tasks" for config in apps.get_app_configs() if config.name.startswith("apps.")]
    jobs: list[dict[str, str]] = []
    for name in [*modules, *EXTRA_MODULES]:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        jobs.extend(getattr(module, "PERIODIC_JOBS", []))
    return jobs


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules of every periodic job; remove ones no longer declared."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only list the jobs.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        from django_q.models import Schedule

        jobs = periodic_jobs()
        if dry_run:
            for job in jobs:
                self.stdout.write(f"{job['cron']:<15} {job['name']}  ({job['func']})")
            return
        created = updated = 0
        with transaction.atomic():
            for job in jobs:
                _, was_created = Schedule.objects.update_or_create(
                    name=job["name"],
                    defaults={
                        "func": job["func"],
                        "schedule_type": Schedule.CRON,
                        "cron": job["cron"],
                        "repeats": -1,
                    },
                )
                created += was_created
                updated += not was_created
            # Our jobs all live under apps.*; a job removed from the code loses its schedule.
            stale = Schedule.objects.filter(func__startswith="apps.").exclude(name__in=[job["name"] for job in jobs])
            removed, _ = stale.delete()
        self.stdout.write(f"Schedules: {created} created, {updated} updated, {removed} removed.")
