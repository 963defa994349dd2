"""`manage.py generate_codes <campaign> <count> --pattern PROMO-******`: unique codes with progress."""

import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.campaigns.promotions import services
from apps.campaigns.promotions.models import Campaign


class Command(BaseCommand):
    help = "Generate unique single-use codes for a campaign from a pattern (# digit, ? letter, * either)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("campaign", help="Campaign id or name")
        parser.add_argument("count", type=int)
        parser.add_argument("--pattern", default="********", help="e.g. SUMMER-####-???? (default 8 x *)")
        parser.add_argument("--expires-days-after-publication", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["campaign"]
        campaign = Campaign.objects.filter(pk=int(key)).first() if key.isdigit() else None
        campaign = campaign or Campaign.objects.filter(name__iexact=key).first()
        if campaign is None:
            raise CommandError(f"No campaign {key!r}.")
        started = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 1 or done == total:
                last[0] = now
                self.stdout.write(f"  {done:,} / {total:,} ({done * 100 // total} %)")

        try:
            batch = services.codes_generate(
                campaign=campaign,
                pattern=options["pattern"],
                count=options["count"],
                expires_days_after_publication=options["expires_days_after_publication"],
                progress=progress,
            )
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        elapsed = time.monotonic() - started
        rate = batch.generated / elapsed if elapsed else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {batch.generated:,} codes for “{campaign.name}” in {elapsed:.1f} s ({rate:,.0f}/s)."
            )
        )
