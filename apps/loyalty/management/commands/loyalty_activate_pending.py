from django.core.management.base import BaseCommand

from apps.loyalty import services


class Command(BaseCommand):
    help = "Activate pending points whose pending period is over (idempotent, batched)."

    def handle(self, *args, **options):
        count = services.points_activate_due()
        self.stdout.write(f"Activated {count} lot(s).")
