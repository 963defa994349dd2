"""
Load a shop's history from its own CSV exports (Shopify: Customers → Export, Orders → Export). Idempotent:
re-running a file, or one that overlaps webhooks already received, adds nothing twice. Prints progress.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.connectors.models import StoreConnection
from apps.connectors.services.backfill import Progress, backfill


class Command(BaseCommand):
    help = "Back-fill customers or orders of a connected shop from its CSV export (idempotent, with progress)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["customers", "orders"])
        parser.add_argument("file", type=Path)
        parser.add_argument("--shop", required=True, help="The connection's shop domain (or its id)")
        parser.add_argument("--every", type=int, default=500, help="Print progress every N records")

    def handle(self, *args: Any, **options: Any) -> None:
        shop = options["shop"].strip().lower()
        connection = StoreConnection.objects.filter(shop_domain=shop).first() or (
            StoreConnection.objects.filter(pk=int(shop)).first() if shop.isdigit() else None
        )
        if connection is None:
            raise CommandError(f"No connected shop {shop!r} (see Store connectors in the console).")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = max(sum(1 for _ in handle) - 1, 0)
        kind = options["kind"]

        def report(progress: Progress, total: int) -> None:
            unit = "orders" if kind == "orders" else "customers"
            self.stdout.write(
                f"{unit}: {progress.done} done (rows in file: {total}), {progress.created} new, "
                f"{progress.existing} already there, {len(progress.errors)} refused"
            )

        with path.open(newline="", encoding="utf-8-sig") as handle:
            progress = backfill(
                connection=connection, kind=kind, file=handle, total=rows, report=report, every=options["every"]
            )
        for error in progress.errors:
            self.stderr.write(error)
        if progress.errors:
            raise CommandError(f"{len(progress.errors)} record(s) refused; the others were imported.")
