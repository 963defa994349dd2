from django.core.management.base import BaseCommand

from apps.loyalty import services


class Command(BaseCommand):
    help = "Recalculate every member's tier (window, downgrade policy, manual floor); idempotent."

    def handle(self, *args, **options):
        changed = services.tiers_recalculate_all()
        self.stdout.write(f"{changed} tier change(s).")
