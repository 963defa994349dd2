"""Delete finished workflow runs older than the retention (AUTOMATIONS_RUN_RETENTION_DAYS)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.automations.services import runs_prune


class Command(BaseCommand):
    help = "Delete finished workflow runs (and their steps) older than the retention."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help=f"Default: {settings.AUTOMATIONS_RUN_RETENTION_DAYS}"
        )

    def handle(self, *args: Any, days: int | None = None, **options: Any) -> None:
        deleted = runs_prune(days=days)
        self.stdout.write(f"Deleted {deleted} run(s).")
