"""
Import historical customers or orders from CSV (formats in the README, "CSV import").

Every row is validated first with the API's own serializers; bad rows are reported with their line
number and reason and skipped, the good ones are written through the services in batches (one
transaction per batch) with progress output. Re-running the same file is safe: customers are upserted
by `external_id`, orders with an `external_id` already stored are left alone. The formats, validation and
writes are `apps.tagging.imports.rows`, shared with the console's import page.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...imports import rows as csv_rows


class Command(BaseCommand):
    help = (
        "Import customers, orders or exchange rates from a CSV file "
        "(validates every row, imports the good ones in batches)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(csv_rows.COLUMNS))
        parser.add_argument("file", type=Path)
        parser.add_argument("--batch-size", type=int, default=500, help="Rows (customers) or orders per transaction")
        parser.add_argument("--dry-run", action="store_true", help="Only validate and report")

    def handle(self, *args, kind: str, file: Path, batch_size: int, dry_run: bool, **options) -> None:
        if not file.exists():
            raise CommandError(f"No such file: {file}")
        parsed = csv_rows.csv_read(file.read_text(encoding="utf-8-sig"), kind=kind)
        if parsed.header_problems:
            raise CommandError(
                f"Bad header in {file}: {'; '.join(parsed.header_problems)}. "
                f"Expected columns: {', '.join(csv_rows.COLUMNS[kind])}."
            )
        unit = csv_rows.UNITS[kind]
        outcome = csv_rows.rows_import(
            kind,
            parsed.rows,
            source_ref=f"import:{file.name}"[:64],
            batch_size=batch_size,
            dry_run=dry_run,
            progress=lambda done, total: self.stdout.write(f"{unit}: {done}/{total}"),
        )
        if outcome.existing:
            self.stdout.write(f"{unit}: ({outcome.existing} already present)")
        for rejection in outcome.rejected:
            self.stderr.write(f"line {rejection.line}: " + "; ".join(rejection.messages))
        verb = "valid (dry run, nothing written)" if dry_run else "imported"
        count = outcome.valid if dry_run else outcome.written
        self.stdout.write(f"{unit}: {count} {verb}, {len(outcome.rejected)} bad row(s) skipped.")
        if outcome.rejected:
            raise CommandError(f"{len(outcome.rejected)} bad row(s) were not imported; see the lines above.")
