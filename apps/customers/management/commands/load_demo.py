"""
Load demo data (idempotent): stores, products, customers in several countries and currencies, orders
(online and point of sale) with refunds, abandoned carts and custom events — all through the services,
so summary figures and trigger events are exactly what production would record. Then each app's optional
`apps/<app>/demo.py` (`load(*, stdout)`) runs, lowest app first, and a superuser `admin` is ensured.
"""

import importlib
import importlib.util
import os
import secrets
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from apps.customers import services
from apps.customers.currency import exchange_rate_set
from apps.customers.models import Cart, Customer, DraftOrder, ExchangeRate, Order, Product, Refund
from apps.customers.services import LineInput
from loyalty_site.lib.money import rate_clean, shop_currency

CAUSE = "demo"

STORES = [
    # code, name, address, latitude, longitude, radius in metres
    ("berlin-mitte", "Berlin Mitte", "Rosenthaler Str. 40, Berlin", 52.5267, 13.4019, 250),
    ("lisbon-chiado", "Lisbon Chiado", "Rua Garrett 19, Lisboa", 38.7107, -9.1418, 200),
]

# external_id, title, sku, price, product tags (applied by apps/tagging/demo.py)
PRODUCTS = [
    ("demo-p-teddy", "Organic cotton teddy bear", "KB-TED-01", "24.90", ["Kids & Baby"]),
    ("demo-p-stroller", "City stroller", "KB-STR-02", "349.00", ["Kids & Baby"]),
    ("demo-p-bottle", "Glass baby bottle (2-pack)", "KB-BOT-03", "18.50", ["Kids & Baby"]),
    ("demo-p-headphones", "Wireless headphones", "EL-HP-10", "129.00", ["Electronics"]),
    ("demo-p-speaker", "Portable speaker", "EL-SP-11", "79.90", ["Electronics"]),
    ("demo-p-charger", "USB-C fast charger", "EL-CH-12", "29.00", ["Electronics"]),
    ("demo-p-mug", "Stoneware mug", "HO-MUG-20", "14.00", ["Home"]),
    ("demo-p-blanket", "Merino throw blanket", "HO-BLK-21", "89.00", ["Home"]),
    ("demo-p-raincoat", "Kids raincoat", "KB-RC-04", "39.90", ["Kids & Baby", "Apparel"]),
    ("demo-p-sneakers", "Everyday sneakers", "AP-SN-30", "99.00", ["Apparel"]),
]

# external_id, first, last, email, country, currency, birthday (MM-DD), account state, accepts marketing, attributes
CUSTOMERS = [
    (
        "demo-c-01",
        "Anna",
        "Schmidt",
        "anna.schmidt@example.com",
        "DE",
        "EUR",
        "03-14",
        "registered",
        True,
        {"weather_zone": "temperate"},
    ),
    ("demo-c-02", "Jonas", "Weber", "jonas.weber@example.com", "DE", "EUR", "11-02", "registered", True, {}),
    (
        "demo-c-03",
        "Inês",
        "Carvalho",
        "ines.carvalho@example.com",
        "PT",
        "EUR",
        "07-21",
        "registered",
        True,
        {"weather_zone": "warm"},
    ),
    ("demo-c-04", "Tiago", "Ferreira", "tiago.ferreira@example.com", "PT", "EUR", "01-30", "invited", True, {}),
    (
        "demo-c-05",
        "Emily",
        "Clark",
        "emily.clark@example.com",
        "GB",
        "GBP",
        "05-09",
        "registered",
        True,
        {"weather_zone": "rainy"},
    ),
    ("demo-c-06", "Oliver", "Hughes", "oliver.hughes@example.com", "GB", "GBP", "09-17", "guest", False, {}),
    (
        "demo-c-07",
        "Mia",
        "Johnson",
        "mia.johnson@example.com",
        "US",
        "USD",
        "12-24",
        "registered",
        True,
        {"weather_zone": "cold"},
    ),
    ("demo-c-08", "Noah", "Williams", "noah.williams@example.com", "US", "USD", "06-05", "registered", True, {}),
    ("demo-c-09", "Chloé", "Martin", "chloe.martin@example.com", "FR", "EUR", "02-11", "registered", True, {}),
    ("demo-c-10", "Yuki", "Tanaka", "yuki.tanaka@example.com", "JP", "JPY", "04-01", "invited", True, {}),
    ("demo-c-11", "Lucas", "Müller", "lucas.mueller@example.com", "DE", "EUR", "10-10", "invited", True, {}),
    ("demo-c-12", "Sofia", "Rossi", "sofia.rossi@example.com", "IT", "EUR", "08-28", "registered", True, {}),
]

# external_id, customer, days ago, channel, store, shipping country, [(product, quantity)]
ORDERS = [
    ("demo-o-1001", "demo-c-01", 200, "online", None, "DE", [("demo-p-teddy", 1), ("demo-p-bottle", 2)]),
    ("demo-o-1002", "demo-c-01", 45, "pos", "berlin-mitte", "DE", [("demo-p-headphones", 1)]),
    ("demo-o-1003", "demo-c-01", 6, "online", None, "DE", [("demo-p-stroller", 1)]),
    ("demo-o-1004", "demo-c-02", 120, "pos", "berlin-mitte", "DE", [("demo-p-mug", 4)]),
    ("demo-o-1005", "demo-c-03", 300, "online", None, "PT", [("demo-p-raincoat", 2), ("demo-p-teddy", 1)]),
    ("demo-o-1006", "demo-c-03", 30, "pos", "lisbon-chiado", "PT", [("demo-p-blanket", 1)]),
    ("demo-o-1007", "demo-c-04", 15, "online", None, "PT", [("demo-p-charger", 1)]),
    ("demo-o-1008", "demo-c-05", 400, "online", None, "GB", [("demo-p-speaker", 1)]),
    ("demo-o-1009", "demo-c-05", 90, "online", None, "GB", [("demo-p-sneakers", 1), ("demo-p-mug", 2)]),
    ("demo-o-1010", "demo-c-07", 60, "online", None, "US", [("demo-p-headphones", 2)]),
    ("demo-o-1011", "demo-c-07", 3, "online", None, "US", [("demo-p-stroller", 1), ("demo-p-bottle", 1)]),
    ("demo-o-1012", "demo-c-08", 10, "online", None, "US", [("demo-p-speaker", 1)]),
    ("demo-o-1013", "demo-c-09", 75, "online", None, "FR", [("demo-p-blanket", 1), ("demo-p-mug", 1)]),
    ("demo-o-1014", "demo-c-10", 20, "online", None, "JP", [("demo-p-headphones", 1)]),
    ("demo-o-1015", "demo-c-12", 1, "online", None, "IT", [("demo-p-sneakers", 2)]),
]

# external_id, order, amount, reason
REFUNDS = [
    ("demo-r-1", "demo-o-1009", "99.00", "Sneakers too small"),
    ("demo-r-2", "demo-o-1005", "39.90", "Damaged in transit"),
]
CANCELLED_ORDERS = ["demo-o-1012"]

# external_id, customer, hours ago abandoned, [(product, quantity)]
CARTS = [
    ("demo-cart-1", "demo-c-02", 5, [("demo-p-stroller", 1)]),
    ("demo-cart-2", "demo-c-06", 30, [("demo-p-headphones", 1), ("demo-p-charger", 1)]),
    ("demo-cart-3", "demo-c-11", 2, [("demo-p-teddy", 2)]),
]

# external_id, customer, event name, days ago, properties
EVENTS: list[tuple[str, str, str, int, dict[str, Any]]] = [
    ("demo-e-1", "demo-c-01", "newsletter_signup", 180, {"list": "weekly"}),
    ("demo-e-2", "demo-c-03", "review_posted", 25, {"product": "demo-p-blanket", "rating": 5}),
    ("demo-e-3", "demo-c-05", "social_like", 12, {"network": "instagram"}),
    ("demo-e-4", "demo-c-07", "review_posted", 2, {"product": "demo-p-headphones", "rating": 4}),
    ("demo-e-5", "demo-c-09", "newsletter_signup", 40, {"list": "weekly"}),
]

# Units of each demo currency per euro (demo prices are in euros). The exchange-rate table gets the
# matching rates against the shop currency, dated before the oldest demo order.
CURRENCY_RATE = {"EUR": Decimal("1"), "USD": Decimal("1.1"), "GBP": Decimal("0.85"), "JPY": Decimal("160")}
OLDEST_ORDER_DAYS = max(days_ago for _ext, _customer, days_ago, *_rest in ORDERS)


class Command(BaseCommand):
    help = "Load demo data (idempotent) and ensure an `admin` superuser; prints the admin login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-admin", action="store_true", help="Do not create or update the admin user")

    def handle(self, *args, no_admin: bool = False, **options) -> None:
        now = timezone.now().replace(microsecond=0)
        with transaction.atomic():
            self._exchange_rates(now)
            stores = self._stores()
            products = self._products()
            customers = self._customers()
            self._orders(now, customers, products, stores)
            self._carts(now, customers, products)
            self._drafts(customers, products)
            self._events(now, customers)
        self.stdout.write(
            f"Demo data: {Customer.objects.count()} customers, {Product.objects.count()} products, "
            f"{Order.objects.count()} orders, {Refund.objects.count()} refunds, {Cart.objects.count()} carts, "
            f"{DraftOrder.objects.count()} draft orders."
        )
        self._app_demos()
        if not no_admin:
            self._admin()

    def _exchange_rates(self, now) -> None:
        """Rates of the demo currencies against the shop currency (kept if that day already has one)."""
        shop = shop_currency()
        if shop not in CURRENCY_RATE:
            raise CommandError(
                f"The demo knows no rates against the shop currency {shop} (use one of {list(CURRENCY_RATE)})."
            )
        day = timezone.localdate(now) - timedelta(days=OLDEST_ORDER_DAYS + 1)
        for code, per_euro in CURRENCY_RATE.items():
            if code != shop and not ExchangeRate.objects.filter(currency=code, day=day).exists():
                exchange_rate_set(currency=code, day=day, rate=rate_clean(CURRENCY_RATE[shop] / per_euro), source=CAUSE)

    def _stores(self) -> dict:
        stores = {}
        for code, name, address, lat, lon, radius in STORES:
            stores[code], _ = services.store_upsert(
                code=code, name=name, address=address, latitude=lat, longitude=lon, radius_m=radius
            )
        return stores

    def _products(self) -> dict:
        return {
            external_id: services.product_upsert(external_id=external_id, title=title, sku=sku, price=Decimal(price))
            for external_id, title, sku, price, _tags in PRODUCTS
        }

    def _customers(self) -> dict:
        customers = {}
        for ext, first, last, email, country, currency, birthday, state, marketing, attributes in CUSTOMERS:
            customer = Customer.objects.filter(external_id=ext).first()
            if customer is None:
                month, day = (int(part) for part in birthday.split("-"))
                customer = services.customer_create(
                    external_id=ext,
                    first_name=first,
                    last_name=last,
                    email=email,
                    country=country,
                    preferred_currency=currency,
                    birthday=date(1988, month, day),
                    attributes=attributes,
                    state=state,
                    cause=CAUSE,
                )
                if not marketing:
                    services.customer_unsubscribe(customer=customer, cause=CAUSE)
            customers[ext] = customer
        return customers

    def _orders(self, now, customers: dict, products: dict, stores: dict) -> None:
        for ext, customer_ext, days_ago, channel, store_code, country, items in ORDERS:
            customer = customers[customer_ext]
            rate = CURRENCY_RATE[customer.preferred_currency]
            lines = [
                LineInput(
                    title=products[product].title,
                    quantity=quantity,
                    unit_price=(products[product].price * rate).quantize(Decimal("0.01")),
                    product=products[product],
                )
                for product, quantity in items
            ]
            services.order_create(
                customer=customer,
                currency=customer.preferred_currency,
                lines=lines,
                external_id=ext,
                channel=channel,
                store=stores.get(store_code) if store_code else None,
                shipping_country=country,
                placed_at=now - timedelta(days=days_ago),
                cause=CAUSE,
            )
        for ext, order_ext, amount, reason in REFUNDS:
            order = Order.objects.get(external_id=order_ext)
            if not Refund.objects.filter(external_id=ext).exists():
                services.refund_create(order=order, amount=amount, reason=reason, external_id=ext, cause=CAUSE)
        for order_ext in CANCELLED_ORDERS:
            services.order_cancel(order=Order.objects.get(external_id=order_ext), cause=CAUSE)

    def _carts(self, now, customers: dict, products: dict) -> None:
        for ext, customer_ext, hours_ago, items in CARTS:
            if Cart.objects.filter(external_id=ext).exists():
                continue  # re-writing the cart would announce it as abandoned again
            customer = customers[customer_ext]
            lines = [
                {
                    "product_id": products[product].pk,
                    "title": products[product].title,
                    "quantity": quantity,
                    "unit_price": str(products[product].price),
                }
                for product, quantity in items
            ]
            services.cart_upsert(
                customer=customer,
                currency=customer.preferred_currency,
                lines=lines,
                external_id=ext,
                checkout_url=f"https://shop.example.com/checkout/{ext}",
                abandoned_at=now - timedelta(hours=hours_ago),
                cause=CAUSE,
            )

    def _drafts(self, customers: dict, products: dict) -> None:
        stroller = products["demo-p-stroller"]
        services.draft_order_create(
            customer=customers["demo-c-08"],
            currency="USD",
            lines=[{"product_id": stroller.pk, "title": stroller.title, "quantity": 1, "unit_price": "383.90"}],
            external_id="demo-d-1",
            cause=CAUSE,
        )

    def _events(self, now, customers: dict) -> None:
        for ext, customer_ext, name, days_ago, properties in EVENTS:
            services.custom_event_record(
                customer=customers[customer_ext],
                name=name,
                properties=properties,
                occurred_at=now - timedelta(days=days_ago),
                external_id=ext,
                cause=CAUSE,
            )

    def _app_demos(self) -> None:
        """Run every other app's `demo.load(stdout=...)`, in INSTALLED_APPS order (lowest app first)."""
        for app_config in apps.get_app_configs():
            module_name = f"{app_config.name}.demo"
            if app_config.label == "customers" or importlib.util.find_spec(module_name) is None:
                continue
            self.stdout.write(f"Demo data: {app_config.label} …")
            importlib.import_module(module_name).load(stdout=self.stdout)

    def _admin(self) -> None:
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "").strip()
        password_file = Path(settings.BASE_DIR) / "var" / "admin-password.txt"
        if not password:
            if password_file.exists():
                password = password_file.read_text().strip()
            if not password:
                password = secrets.token_urlsafe(12)
                password_file.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w") as handle:
                    handle.write(password + "\n")
            password_file.chmod(0o600)
        user_model = get_user_model()
        admin_user = user_model.objects.filter(username="admin").first()
        if admin_user is None:
            admin_user = user_model.objects.create_superuser(username="admin", email="admin@example.com")
        admin_user.is_staff = admin_user.is_superuser = admin_user.is_active = True
        admin_user.set_password(password)
        admin_user.save()
        # scripts/run serves on $HOST:$PORT (default 127.0.0.1:8000).
        address = f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"
        self.stdout.write(f"Admin login: http://{address}/admin/  user: admin  password: {password}")
