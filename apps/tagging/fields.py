"""
The tag fields of the condition language (imported by TaggingConfig.ready).

Tags compare case-insensitively. `customer.tags` compiles to EXISTS over CustomerTag (indexed by
customer); product and line tags are read in memory, once per product per evaluation.
"""

from django.db.models import F, OuterRef

from apps.customers.choices import OrderStatus
from apps.tagging.models import CustomerTag, ProductTag
from loyalty_site.lib.conditions import catalog


def _read_customer_tags(context, **kwargs):
    customer = context.customer
    if customer is None or customer.pk is None:
        return []
    return context.cached(
        ("customer.tags", customer.pk),
        lambda: sorted(CustomerTag.objects.filter(customer_id=customer.pk).values_list("tag__name", flat=True)),
    )


def _customer_tag_items(**kwargs):
    return CustomerTag.objects.filter(customer_id=OuterRef("pk")), F("tag__name")


def _product_tags(context, product_id):
    if product_id is None:
        return []
    return context.cached(
        ("product.tags", product_id),
        lambda: sorted(ProductTag.objects.filter(product_id=product_id).values_list("tag__name", flat=True)),
    )


def _read_product_tags(context, **kwargs):
    product = context.product
    return _product_tags(context, product.pk if product is not None else None)


def _bought_product_tags(customer_id):
    # Tags of the products on the customer's non-cancelled orders (through OrderLine.product). One
    # filter() call, so the customer and the status apply to the same order.
    kept = [status for status in OrderStatus.values if status != OrderStatus.CANCELLED]
    return ProductTag.objects.filter(
        product__order_lines__order__customer_id=customer_id, product__order_lines__order__status__in=kept
    )


def _read_bought_product_tags(context, **kwargs):
    customer = context.customer
    if customer is None or customer.pk is None:
        return []
    return context.cached(
        ("customer.product_tags", customer.pk),
        lambda: sorted(set(_bought_product_tags(customer.pk).values_list("tag__name", flat=True))),
    )


def _bought_product_tag_items(**kwargs):
    return _bought_product_tags(OuterRef("pk")), F("tag__name")


def _read_line_product_tags(context, **kwargs):
    # Order lines are OrderLine rows; cart and draft lines are dicts carrying a product_id.
    line = context.line
    if line is None:
        return []
    product_id = line.get("product_id") if isinstance(line, dict) else line.product_id
    return _product_tags(context, product_id)


for _spec in (
    catalog.FieldSpec(
        name="customer.tags",
        type="tags",
        label="Customer tags",
        scope="customer",
        suggest="tags",
        read=_read_customer_tags,
        items=_customer_tag_items,
        changed_by=("customer.tag_added", "customer.tag_removed"),
        example="VIP",
    ),
    catalog.FieldSpec(
        name="customer.product_tags",
        type="tags",
        label="Tags of products bought",
        scope="customer",
        suggest="tags",
        description="Tags of the products on the customer's non-cancelled orders (e.g. bought Kids & Baby).",
        read=_read_bought_product_tags,
        items=_bought_product_tag_items,
        changed_by=("order.created", "order.cancelled", "order.refunded", "order.updated"),
        example="Kids & Baby",
    ),
    catalog.FieldSpec(
        name="product.tags",
        type="tags",
        label="Product tags",
        scope="product",
        suggest="tags",
        read=_read_product_tags,
        example="Kids & Baby",
    ),
    catalog.FieldSpec(
        name="line.product.tags",
        type="tags",
        label="Tags of the line's product",
        scope="line",
        suggest="tags",
        read=_read_line_product_tags,
        example="Kids & Baby",
    ),
):
    catalog.register_field(_spec)
