from typing import Any

from django.core.management.base import BaseCommand

from apps.reports import services


class Command(BaseCommand):
    help = "Recompute every day of the report rollups from the raw tables (back-fills); --changed: only changed days."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--changed", action="store_true", help="Only the days changed since the last refresh.")

    def handle(self, *args: Any, changed: bool = False, **options: Any) -> None:
        result = services.rollups_refresh() if changed else services.rollups_rebuild()
        span = f" ({result.days[0]} … {result.days[-1]})" if result.days else ""
        self.stdout.write(f"{len(result.days)} days recomputed{span} in {result.seconds:.2f} s")
