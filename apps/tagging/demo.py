"""Demo data for `manage.py load_demo`: product tags (Kids & Baby, Electronics...) and a few customer tags."""

from typing import TextIO

from django.db import transaction

from apps.customers.management.commands.load_demo import PRODUCTS
from apps.customers.models import Customer, Product

from . import services
from .choices import TagSource

CUSTOMER_TAGS = {
    "demo-c-01": ["VIP", "Parent"],
    "demo-c-03": ["Parent"],
    "demo-c-05": ["Newsletter"],
    "demo-c-07": ["VIP", "Parent"],
    "demo-c-09": ["Newsletter"],
}


@transaction.atomic
def load(*, stdout: TextIO) -> None:
    products = {p.external_id: p for p in Product.objects.filter(external_id__in=[row[0] for row in PRODUCTS])}
    for external_id, _title, _sku, _price, tags in PRODUCTS:
        if external_id in products:
            services.product_tags_set(product=products[external_id], names=tags)
    added = 0
    for customer in Customer.objects.filter(external_id__in=CUSTOMER_TAGS).order_by("pk"):
        added += len(
            services.tags_add(
                customer=customer,
                names=CUSTOMER_TAGS[customer.external_id or ""],
                source=TagSource.IMPORT,
                source_ref="demo",
            )
        )
    stdout.write(f"Demo tags: {len(products)} products tagged, {added} customer tags added.")
