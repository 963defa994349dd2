from django.core.management.base import BaseCommand

from apps.loyalty import services


class Command(BaseCommand):
    help = (
        "Send loyalty.points_expiring for points expiring within each program's notice period, then expire "
        "points past their date (or after inactivity) and codes past their validity (idempotent, batched)."
    )

    def handle(self, *args, **options):
        notified = services.points_expiring_notify()
        expired = services.points_expire_due()
        self.stdout.write(f"Sent {notified} expiry reminder(s); expired {expired} lot(s).")
