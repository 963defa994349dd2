from django.core.management.base import BaseCommand, CommandError

from apps.loyalty import selectors


class Command(BaseCommand):
    help = "Check that every balance equals the sum of its ledger entries and of its lots' remaining points."

    def handle(self, *args, **options):
        drift = selectors.ledger_drift()
        for row in drift[:50]:
            self.stderr.write(f"membership {row['membership_id']}: balance {row['balance']} != ledger {row['ledger']}")
        if drift:
            raise CommandError(f"{len(drift)} member(s) drift from their ledger.")
        self.stdout.write("Every balance matches its ledger.")
