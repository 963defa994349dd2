"""
Realistic synthetic customers, orders, order lines and refunds, fast enough for 1M customers / 10M orders.

PostgreSQL (one transaction, every step timed, the COMMIT included): the secondary indexes and the foreign
keys of the four tables are dropped first (their definitions kept) and re-created after the load — one
set-based validation per foreign key instead of ~27M deferred per-row checks at COMMIT; orders, lines and
refunds are streamed with `COPY ... FROM STDIN` (psycopg 3) with primary keys reserved from the sequences up
front, while the customers' summary figures are added up in memory, so customers are COPYed last WITH their
figures (no UPDATE: no dead rows); then `VACUUM ANALYZE` (visibility map and statistics). SQLite: the same
rows through `bulk_create` in batches, then the summaries with one UPDATE ... FROM (SQLite >= 3.33).

The data is historical: no outbox events are written and no workflow runs, exactly like an import.
Exchange rates for the generated currencies (`GENERATED_USD_VALUE`, relative to the shop currency) are
loaded for the day before the window, and every order and refund carries its shop-currency amounts.
"""

import random
import time
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from apps.customers.choices import CustomerState, OrderChannel, OrderStatus
from apps.customers.currency import exchange_rate_lookup, exchange_rate_set
from apps.customers.models import Customer, Order, OrderLine, Product, Refund
from loyalty_site.lib.money import money_round, rate_clean, shop_currency

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Victor",
    "Wen",
    "Xavier",
    "Yara",
    "Zoe",
    "Linh",
    "Minh",
    "Hoa",
    "Wei",
    "Li",
    "Yan",
    "Ivan",
    "Olga",
    "Sergei",
    "Marta",
    "Lukas",
    "Sofia",
    "Mateo",
    "Aisha",
]
LAST_NAMES = [
    "Smith",
    "Müller",
    "Nguyen",
    "Tran",
    "Le",
    "Wang",
    "Zhang",
    "Ivanov",
    "Petrova",
    "Garcia",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Jensen",
    "Silva",
    "Kim",
    "Park",
    "Novak",
    "Horvat",
    "Schmidt",
    "Brown",
    "Wilson",
    "Taylor",
    "Martin",
    "Lopez",
    "Sato",
    "Suzuki",
    "Cohen",
    "Haddad",
    "Okafor",
]
# country, currency, weight
COUNTRIES = (
    ("US", "USD", 30),
    ("DE", "EUR", 12),
    ("FR", "EUR", 8),
    ("GB", "GBP", 8),
    ("VN", "VND", 10),
    ("CN", "CNY", 8),
    ("RU", "RUB", 5),
    ("CA", "CAD", 6),
    ("JP", "JPY", 5),
    ("AU", "AUD", 4),
    ("NL", "EUR", 4),
)
# What one unit of each generated currency is worth in US dollars (illustrative, fixed for determinism).
GENERATED_USD_VALUE = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "VND": Decimal("0.0000393"),
    "CNY": Decimal("0.138"),
    "RUB": Decimal("0.0108"),
    "CAD": Decimal("0.73"),
    "JPY": Decimal("0.0067"),
    "AUD": Decimal("0.66"),
}
EMAIL_DOMAINS = ("example.com", "mail.example.org", "shop.example.net", "staff.example.com")
# A catalogue with a few titles that exercise whole-word matching ("Women", "Ladies", "for her" match;
# "Mother's Day card" and "Hermes" do not).
PRODUCT_TITLES = (
    "Women's Running Shoes",
    "Ladies Handbag",
    "Female Fit Yoga Mat",
    "Gift Box for Her",
    "Mother's Day Card",
    "Hermes Style Scarf",
    "Men's Leather Wallet",
    "Kids Rain Jacket",
    "Baby Stroller",
    "Baby Bottle Set",
    "Wireless Earbuds",
    "4K Television",
    "Smartphone Case",
    "USB-C Charger",
    "Laptop Stand",
    "Coffee Beans 1kg",
    "Green Tea",
    "Dark Chocolate",
    "Cotton T-Shirt",
    "Denim Jeans",
    "Winter Coat",
    "Desk Lamp",
    "Garden Hose",
    "Board Game",
    "Puzzle 1000 pieces",
    "Notebook A5",
    "Fountain Pen",
    "Water Bottle",
    "Backpack",
    "Sunglasses",
)


def _weighted_table(pairs: tuple[tuple[Any, ...], ...]) -> list[tuple[Any, ...]]:
    table: list[tuple[Any, ...]] = []
    for *values, weight in pairs:
        table.extend([tuple(values)] * weight)
    return table


NULL = "\\N"  # COPY text format


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


LOADED_TABLES = ("customers_customer", "customers_order", "customers_orderline", "customers_refund")
CUSTOMER_COLUMNS = [
    "id",
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "preferred_currency",
    "birthday",
    "state",
    "accepts_marketing",
    "unsubscribed_at",
    "attributes",
    "orders_count",
    "total_spent",
    "refunded_total",
    "first_order_at",
    "last_order_at",
    "created_at",
    "updated_at",
    "status",
    "status_reason",
    "signup_device",
    "email_domain",
]


@dataclass(frozen=True)
class _DrawnCustomer:
    """One generated customer's own attributes (the same draw for the COPY and the ORM path)."""

    external_id: str
    email: str
    phone: str
    first_name: str
    last_name: str
    country: str
    currency: str
    birthday: date | None
    state: str
    unsubscribed: float | None


def _customer_draw(
    rng: random.Random, countries: list[tuple[Any, ...]], *, index: int, seed: int, now: float
) -> _DrawnCustomer:
    country, currency = rng.choice(countries)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    birthday = None
    if rng.random() < 0.7:
        birthday = date(rng.randint(1950, 2007), 1, 1) + timedelta(days=rng.randrange(366))
    state = CustomerState.GUEST if rng.random() < 0.25 else CustomerState.REGISTERED
    unsubscribed = now - rng.random() * 86400 * 90 if rng.random() < 0.05 else None
    return _DrawnCustomer(
        external_id=f"gen{seed}-c{index}",
        email=f"{first.lower()}.{index}.s{seed}@{rng.choice(EMAIL_DOMAINS)}",
        phone=f"+1555{index % 10_000_000:07d}",
        first_name=first,
        last_name=last,
        country=country,
        currency=currency,
        birthday=birthday,
        state=state,
        unsubscribed=unsubscribed,
    )


@dataclass
class _Dropped:
    """Statements that re-create what `_secondary_drop` dropped."""

    indexes: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)


class _Summaries:
    """
    The customers' summary figures, added up while their orders are generated, by the order services' rules:
    cancelled orders count for nothing but their refunds; spend is net of refunds, in shop-currency cents.
    """

    def __init__(self, customers: int) -> None:
        self.count = array("q", bytes(8 * customers))
        self.spent = array("q", bytes(8 * customers))
        self.refunded = array("q", bytes(8 * customers))
        self.first = array("d", [float("inf")]) * customers
        self.last = array("d", bytes(8 * customers))

    def add(self, index: int, status: str, placed: float, total_shop: Decimal, refunded_shop: Decimal) -> None:
        refunded = int(refunded_shop * 100)
        self.refunded[index] += refunded
        if status == OrderStatus.CANCELLED:
            return
        self.count[index] += 1
        self.spent[index] += int(total_shop * 100) - refunded
        if placed < self.first[index]:
            self.first[index] = placed
        if placed > self.last[index]:
            self.last[index] = placed


class Command(BaseCommand):
    help = "Generate realistic synthetic customers and orders (COPY on PostgreSQL) for benchmarks and demos."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, required=True)
        parser.add_argument("--orders", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--days", type=int, default=365, help="Orders are spread over the last N days.")
        parser.add_argument("--batch", type=int, default=100_000, help="Rows per COPY / bulk_create batch.")

    def handle(self, *args, customers: int, orders: int, seed: int, days: int, batch: int, **options):
        if customers < 1 or orders < 0 or days < 1 or batch < 1:
            raise CommandError("--customers must be >= 1, --orders >= 0, --days >= 1, --batch >= 1.")
        self.rng = random.Random(seed)
        self.seed = seed
        self.days = days
        self.batch = batch
        self.now = timezone.now().timestamp()
        self.postgres = connection.vendor == "postgresql"
        if Customer.objects.filter(external_id=f"gen{seed}-c0").exists():
            raise CommandError(f"Data for --seed {seed} already exists; pass another --seed.")
        started = time.monotonic()
        if self.postgres:
            self._handle_postgres(customers, orders)
        else:
            self._handle_sqlite(customers, orders)
        self.stdout.write(self.style.SUCCESS(f"done in {time.monotonic() - started:.1f}s"))

    def _handle_sqlite(self, customers: int, orders: int) -> None:
        with transaction.atomic():
            self.rates = self._exchange_rates()
            step = time.monotonic()
            self.products = self._products()
            self._report("products", len(self.products), step)
            step = time.monotonic()
            first_customer_id = self._customers(customers)
            self._report("customers", customers, step)
            step = time.monotonic()
            line_count, refund_count = self._orders(orders, first_customer_id, customers)
            self._report("orders", orders, step, extra=f"{line_count} lines, {refund_count} refunds")
            step = time.monotonic()
            updated = self._summaries(first_customer_id, first_customer_id + customers - 1)
            self._report("summary figures", updated, step)

    def _handle_postgres(self, customers: int, orders: int) -> None:
        # Inside a caller's transaction (tests) there is no COMMIT of ours and VACUUM cannot run.
        outer = connection.in_atomic_block
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute("SET LOCAL maintenance_work_mem TO '512MB'")
            self.rates = self._exchange_rates()
            step = time.monotonic()
            self.products = self._products()
            self._report("products", len(self.products), step)

            step = time.monotonic()
            dropped = self._secondary_drop(LOADED_TABLES)
            self._report("indexes and foreign keys dropped", len(dropped.indexes) + len(dropped.foreign_keys), step)

            step = time.monotonic()
            self._customers_created(customers)
            first_customer_id = self._reserve_ids(Customer, customers)
            self.summary = _Summaries(customers)
            self._report("customers planned", customers, step)

            step = time.monotonic()
            line_count, refund_count = self._orders(orders, first_customer_id, customers)
            self._report("orders", orders, step, extra=f"{line_count} lines, {refund_count} refunds")

            step = time.monotonic()
            self._customers_copy(customers, first_customer_id)
            self._report("customers", customers, step, extra="summary figures written with the rows")
            self.stdout.write(f"summary figures: {customers} customers, computed while the orders were generated")

            for kind, statements in (("indexes", dropped.indexes), ("foreign keys", dropped.foreign_keys)):
                step = time.monotonic()
                with connection.cursor() as cursor:
                    for statement in statements:
                        cursor.execute(statement)
                self._report(f"{kind} re-created", len(statements), step)
            step = time.monotonic()
        if outer:
            self.stdout.write("commit: left to the caller's transaction; no VACUUM ANALYZE")
            return
        self._report("commit", 1, step)
        step = time.monotonic()
        with connection.cursor() as cursor:
            for table in LOADED_TABLES:
                cursor.execute(f"VACUUM ANALYZE {table}")
        self._report("vacuum analyze", len(LOADED_TABLES), step)

    # --- steps ---------------------------------------------------------------------------------------

    def _exchange_rates(self) -> dict[str, Decimal]:
        """Rates of the generated currencies on the day before the window (kept if already loaded)."""
        shop = shop_currency()
        if shop not in GENERATED_USD_VALUE:
            raise CommandError(f"generate_data knows no rates against the shop currency {shop}.")
        day = timezone.localdate() - timedelta(days=self.days + 1)
        rates = {}
        for code, usd in GENERATED_USD_VALUE.items():
            if code == shop:
                rates[code] = Decimal("1")
                continue
            rate = exchange_rate_lookup(currency=code, day=day)
            if rate is None:
                rate = rate_clean(usd / GENERATED_USD_VALUE[shop])
                exchange_rate_set(currency=code, day=day, rate=rate, source="generate_data")
            rates[code] = rate
        return rates

    def _shop(self, currency: str, total: Decimal, refunded: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        """(rate, total_shop, refunded_total_shop) with the services' rounding; a full refund nets to 0."""
        rate = self.rates[currency]
        total_shop = money_round(total * rate, self.shop)
        if refunded >= total:
            return rate, total_shop, total_shop if refunded else Decimal("0.00")
        return rate, total_shop, min(money_round(refunded * rate, self.shop), total_shop)

    def _report(self, what: str, count: int, since: float, extra: str = "") -> None:
        elapsed = time.monotonic() - since
        rate = count / elapsed if elapsed > 0 else 0
        suffix = f" ({extra})" if extra else ""
        self.stdout.write(f"{what}: {count} rows in {elapsed:.2f}s, {rate:,.0f}/s{suffix}")

    def _products(self) -> list[tuple[int, str, Decimal]]:
        """The catalogue (small): created once per seed, reused by later runs with the same seed."""
        rows = []
        for index, title in enumerate(PRODUCT_TITLES):
            external_id = f"gen{self.seed}-p{index}"
            price = Decimal(self.rng.choice((5, 9, 15, 19, 25, 39, 49, 79, 99, 149, 299, 499))) + Decimal("0.99")
            product, _ = Product.objects.get_or_create(
                external_id=external_id, defaults={"title": title, "price": price, "sku": f"SKU-{seed_sku(index)}"}
            )
            rows.append((product.pk, product.title, product.price))
        return rows

    def _reserve_ids(self, model: type[models.Model], count: int) -> int:
        """Reserve `count` consecutive primary keys from the table's sequence; returns the first."""
        table = model._meta.db_table
        with connection.cursor() as cursor:
            # Held until commit: nobody else inserts into the table while the range is being claimed.
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            # Table and sequence names come from model meta and the catalog, never from input.
            reserve = f"SELECT setval(%s, GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), (SELECT last_value FROM {sequence})) + %s)"  # noqa: S608, E501
            cursor.execute(reserve, [sequence, count])
            last = cursor.fetchone()[0]
        return last - count + 1

    def _copy(self, model: type[models.Model], columns: list[str], lines: list[str]) -> None:
        table = model._meta.db_table
        with connection.cursor() as cursor:
            raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write("".join(lines))

    def _secondary_drop(self, tables: tuple[str, ...]) -> "_Dropped":
        """
        Drop the secondary indexes and foreign keys of `tables`, returning the statements that re-create them
        (definitions from the catalog, so whatever later migrations add is restored as it was). Primary keys
        and check constraints stay. Runs in the generator's transaction: a failure restores everything.
        """
        dropped = _Dropped()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY conname",
                [list(tables)],
            )
            for table, name, definition in cursor.fetchall():
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                dropped.foreign_keys.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            # Indexes that back no constraint (unique constraints and primary keys stay).
            cursor.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
                [list(tables)],
            )
            for name, definition in cursor.fetchall():
                cursor.execute(f"DROP INDEX {name}")
                dropped.indexes.append(definition)
        return dropped

    def _customers_created(self, count: int) -> None:
        """When each customer registered (orders are placed after it); the rows are written after the orders."""
        rng = random.Random(f"{self.seed}-created")
        span = self.days * 2 * 86400
        self.customer_created = array("d", (self.now - rng.random() * span for _ in range(count)))

    def _customers_copy(self, count: int, first_id: int) -> None:
        """COPY the customers with their summary figures (one write per row, no later UPDATE)."""
        rng = random.Random(f"{self.seed}-customers")
        countries = _weighted_table(COUNTRIES)
        now_text = _ts(self.now)
        summary = self.summary
        done = 0
        while done < count:
            size = min(self.batch, count - done)
            rows: list[str] = []
            for index in range(done, done + size):
                drawn = _customer_draw(rng, countries, index=index, seed=self.seed, now=self.now)
                unsubscribed = drawn.unsubscribed
                orders_count = summary.count[index]
                first_at = _ts(summary.first[index]) if orders_count else NULL
                last_at = _ts(summary.last[index]) if orders_count else NULL
                rows.append(
                    f"{first_id + index}\t{drawn.external_id}\t{drawn.email}\t{drawn.phone}\t{drawn.first_name}\t"
                    f"{drawn.last_name}\t{drawn.country}\t{drawn.currency}\t"
                    f"{drawn.birthday.isoformat() if drawn.birthday else NULL}\t{drawn.state}\t"
                    f"{'f' if unsubscribed else 't'}\t{_ts(unsubscribed) if unsubscribed else NULL}\t{{}}\t"
                    f"{orders_count}\t{_cents(summary.spent[index])}\t{_cents(summary.refunded[index])}\t"
                    f"{first_at}\t{last_at}\t{_ts(self.customer_created[index])}\t{now_text}\t"
                    f"active\t\t\t{drawn.email.rpartition('@')[2]}\n"
                )
            self._copy(Customer, CUSTOMER_COLUMNS, rows)
            done += size

    def _customers(self, count: int) -> int:
        """SQLite: the customers through the ORM (PostgreSQL COPYs them with their figures: `_customers_copy`)."""
        rng = self.rng
        countries = _weighted_table(COUNTRIES)
        span = self.days * 2 * 86400
        self.customer_created = array("d")
        self.sqlite_customer_ids: list[int] = []
        ids = self.sqlite_customer_ids
        done = 0
        while done < count:
            size = min(self.batch, count - done)
            objects: list[Customer] = []
            for index in range(done, done + size):
                created = self.now - rng.random() * span
                self.customer_created.append(created)
                drawn = _customer_draw(rng, countries, index=index, seed=self.seed, now=self.now)
                objects.append(
                    Customer(
                        external_id=drawn.external_id,
                        email=drawn.email,
                        email_domain=drawn.email.rpartition("@")[2],
                        phone=drawn.phone,
                        first_name=drawn.first_name,
                        last_name=drawn.last_name,
                        country=drawn.country,
                        preferred_currency=drawn.currency,
                        birthday=drawn.birthday,
                        state=drawn.state,
                        accepts_marketing=drawn.unsubscribed is None,
                        unsubscribed_at=datetime.fromtimestamp(drawn.unsubscribed, UTC) if drawn.unsubscribed else None,
                        created_at=datetime.fromtimestamp(created, UTC),
                    )
                )
            ids.extend(row.pk for row in Customer.objects.bulk_create(objects))
            done += size
        return ids[0]

    def _orders(self, count: int, first_customer_id: int, customers: int) -> tuple[int, int]:
        if count == 0:
            return 0, 0
        rng = self.rng
        now = self.now
        window_start = now - self.days * 86400
        products = self.products
        currencies = _weighted_table(COUNTRIES)
        self.shop = shop = shop_currency()
        order_columns = [
            "id",
            "external_id",
            "customer_id",
            "currency",
            "subtotal",
            "discount_total",
            "shipping_total",
            "tax_total",
            "total",
            "refunded_total",
            "shop_currency",
            "exchange_rate",
            "subtotal_shop",
            "discount_total_shop",
            "shipping_total_shop",
            "tax_total_shop",
            "total_shop",
            "refunded_total_shop",
            "channel",
            "shipping_country",
            "status",
            "store_id",
            "placed_at",
            "cancelled_at",
            "created_at",
            "updated_at",
            "checkout_session",
            "discount_codes",
        ]
        line_columns = ["order_id", "product_id", "title", "quantity", "unit_price", "total"]
        refund_columns = ["order_id", "external_id", "amount", "amount_shop", "reason", "created_at"]
        first_order_id = self._reserve_ids(Order, count) if self.postgres else 0  # (only read on PostgreSQL)
        line_total = refund_total = 0
        done = 0
        while done < count:
            size = min(self.batch, count - done)
            order_rows: list[str] = []
            line_rows: list[str] = []
            refund_rows: list[str] = []
            order_objects: list[Order] = []
            line_specs: list[list[tuple[int, str, int, Decimal]]] = []
            refund_specs: list[tuple[Decimal, float, Decimal] | None] = []
            for offset in range(size):
                index = done + offset
                # Skewed: a loyal tenth of the customers places 40% of the orders; some never order.
                if rng.random() < 0.4:
                    customer_index = rng.randrange(max(1, customers // 10))
                else:
                    customer_index = rng.randrange(customers)
                created = self.customer_created[customer_index]
                start = max(created, window_start)
                placed = start + rng.random() * (now - start)
                country, currency = rng.choice(currencies) if rng.random() < 0.1 else (None, None)
                if country is None:
                    # Most orders use the currency of the customer's country; a few pay in another one.
                    country, currency = COUNTRIES[customer_index % len(COUNTRIES)][:2]
                channel = OrderChannel.POS if rng.random() < 0.2 else OrderChannel.ONLINE
                lines = []
                subtotal = Decimal("0.00")
                for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                    product_id, title, price = rng.choice(products)
                    quantity = rng.choice((1, 1, 1, 2, 3))
                    lines.append((product_id, title, quantity, price))
                    subtotal += price * quantity
                total = subtotal
                roll = rng.random()
                status, cancelled, refunded, refund = OrderStatus.PAID, None, Decimal("0.00"), None
                if roll < 0.02:
                    status, cancelled = OrderStatus.CANCELLED, min(placed + 3600, now)
                elif roll < 0.04:
                    status, refunded = OrderStatus.REFUNDED, total
                elif roll < 0.06:
                    status, refunded = OrderStatus.PARTIALLY_REFUNDED, (total / 2).quantize(Decimal("0.01"))
                rate, total_shop, refunded_shop = self._shop(currency, total, refunded)
                if refunded:
                    refund = (refunded, min(placed + 86400 * 3, now), refunded_shop)
                elif status == OrderStatus.PAID and placed < now - 86400 * 14:
                    status = OrderStatus.FULFILLED
                external_id = f"gen{self.seed}-o{index}"
                customer_id = (first_customer_id + customer_index) if self.postgres else None
                if self.postgres:
                    self.summary.add(customer_index, status, placed, total_shop, refunded_shop)
                    order_id = first_order_id + index
                    placed_text = _ts(placed)
                    order_rows.append(
                        f"{order_id}\t{external_id}\t{customer_id}\t{currency}\t{subtotal}\t0.00\t0.00\t0.00\t"
                        f"{total}\t{refunded}\t{shop}\t{rate}\t{total_shop}\t0.00\t0.00\t0.00\t"
                        f"{total_shop}\t{refunded_shop}\t{channel}\t{country}\t{status}\t{NULL}\t{placed_text}\t"
                        f"{_ts(cancelled) if cancelled else NULL}\t{placed_text}\t{placed_text}\t\t[]\n"
                    )
                    for product_id, title, quantity, price in lines:
                        line_rows.append(
                            f"{order_id}\t{product_id}\t{title}\t{quantity}\t{price}\t{price * quantity}\n"
                        )
                    if refund:
                        refund_rows.append(
                            f"{order_id}\t{NULL}\t{refund[0]}\t{refund[2]}\tgenerated\t{_ts(refund[1])}\n"
                        )
                else:
                    order_objects.append(
                        Order(
                            external_id=external_id,
                            customer_id=self.sqlite_customer_ids[customer_index],
                            currency=currency,
                            subtotal=subtotal,
                            total=total,
                            refunded_total=refunded,
                            shop_currency=shop,
                            exchange_rate=rate,
                            subtotal_shop=total_shop,
                            discount_total_shop=Decimal("0.00"),
                            shipping_total_shop=Decimal("0.00"),
                            tax_total_shop=Decimal("0.00"),
                            total_shop=total_shop,
                            refunded_total_shop=refunded_shop,
                            channel=channel,
                            shipping_country=country,
                            status=status,
                            placed_at=datetime.fromtimestamp(placed, UTC),
                            cancelled_at=datetime.fromtimestamp(cancelled, UTC) if cancelled else None,
                        )
                    )
                    line_specs.append(lines)
                    refund_specs.append(refund)
                line_total += len(lines)
                refund_total += 1 if refund else 0
            if self.postgres:
                self._copy(Order, order_columns, order_rows)
                self._copy(OrderLine, line_columns, line_rows)
                if refund_rows:
                    self._copy(Refund, refund_columns, refund_rows)
            else:
                saved = Order.objects.bulk_create(order_objects)
                OrderLine.objects.bulk_create(
                    OrderLine(
                        order_id=order.pk,
                        product_id=product_id,
                        title=title,
                        quantity=quantity,
                        unit_price=price,
                        total=price * quantity,
                    )
                    for order, lines in zip(saved, line_specs, strict=True)
                    for product_id, title, quantity, price in lines
                )
                Refund.objects.bulk_create(
                    Refund(
                        order_id=order.pk,
                        amount=refund[0],
                        amount_shop=refund[2],
                        reason="generated",
                        created_at=datetime.fromtimestamp(refund[1], UTC),
                    )
                    for order, refund in zip(saved, refund_specs, strict=True)
                    if refund
                )
            done += size
            if self.postgres and done < count:
                self.stdout.write(f"  orders: {done}/{count}")
        return line_total, refund_total

    def _summaries(self, first_id: int, last_id: int) -> int:
        """Customer summary figures from their orders, set-based (the same rules as the order services)."""
        sql = """
            UPDATE customers_customer
               SET orders_count = agg.orders_count,
                   total_spent = agg.total_spent,
                   refunded_total = agg.refunded_total,
                   first_order_at = agg.first_order_at,
                   last_order_at = agg.last_order_at
              FROM (
                    SELECT customer_id,
                           SUM(CASE WHEN status <> %s THEN 1 ELSE 0 END) AS orders_count,
                           SUM(CASE WHEN status <> %s THEN total_shop - refunded_total_shop ELSE 0 END)
                               AS total_spent,
                           SUM(refunded_total_shop) AS refunded_total,
                           MIN(CASE WHEN status <> %s THEN placed_at END) AS first_order_at,
                           MAX(CASE WHEN status <> %s THEN placed_at END) AS last_order_at
                      FROM customers_order
                     WHERE customer_id BETWEEN %s AND %s
                  GROUP BY customer_id
                   ) AS agg
             WHERE customers_customer.id = agg.customer_id
        """
        cancelled = OrderStatus.CANCELLED.value
        with connection.cursor() as cursor:
            cursor.execute(sql, [cancelled, cancelled, cancelled, cancelled, first_id, last_id])
            return cursor.rowcount


def seed_sku(index: int) -> str:
    return f"{index:05d}"
