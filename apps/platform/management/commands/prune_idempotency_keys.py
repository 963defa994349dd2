"""Delete stored Idempotency-Key responses past their retention (a replay after that runs again)."""

from django.core.management.base import BaseCommand, CommandParser

from apps.platform.services import idempotency_records_prune


class Command(BaseCommand):
    help = "Delete Idempotency-Key records older than --days (default 30)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days: int, **options) -> None:
        deleted = idempotency_records_prune(older_than_days=days)
        self.stdout.write(f"Deleted {deleted} idempotency record(s) older than {days} days.")
