"""
Rows whose shop-currency amounts are unknown: list them, or fill them once rates are loaded.

    manage.py money_rates --missing      # one line per currency and day without a known rate
    manage.py money_rates --fill         # fill what the rate table now covers; lists what is left

Orders, carts and draft orders written before shop amounts existed (or under another SHOP_CURRENCY)
keep NULL shop amounts when no rate was known; they add nothing to customers' money figures until
filled. Exits non-zero while rows remain without a rate, so a deployment script can check it.
"""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...currency import record_day, rows_missing_rates, shop_amounts_fill


class Command(BaseCommand):
    help = "List (--missing) or fill (--fill) rows whose shop-currency amounts have no known exchange rate."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--missing", action="store_true", help="Only list (the default)")
        group.add_argument("--fill", action="store_true", help="Fill the rows the rate table now covers")

    def handle(self, *args, missing: bool = False, fill: bool = False, **options) -> None:
        if fill:
            filled = 0
            for kind, rows in rows_missing_rates().items():
                for row in rows.order_by("pk").iterator(chunk_size=500):
                    argument = {"orders": "order", "carts": "cart", "draft_orders": "draft"}[kind]
                    filled += shop_amounts_fill(**{argument: row})
            self.stdout.write(f"filled: {filled} row(s)")
        left = 0
        for kind, rows in rows_missing_rates().items():
            date_field = "placed_at" if kind == "orders" else "created_at"
            per_day = Counter(
                (currency, record_day(at).isoformat()) for currency, at in rows.values_list("currency", date_field)
            )
            for (currency, day), count in sorted(per_day.items()):
                self.stdout.write(f"{kind}: {count} in {currency} on {day} without a rate")
            left += sum(per_day.values())
        if left:
            raise CommandError(
                f"{left} row(s) have no known exchange rate: load rates for the days above "
                "(admin, API, `import_csv exchange_rates`), then run `money_rates --fill`."
            )
        self.stdout.write("every row has its shop-currency amounts")
