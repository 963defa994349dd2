"""What this app offers the automation engine: fields, triggers and actions."""

# --- Fields (condition language catalog) ---------------------------------------------------------
# Tags compare case-insensitively. `customer.tags` compiles to EXISTS over CustomerTag (indexed by
# customer); product and line tags are read in memory, once per product per evaluation.

from django.db.models import F, OuterRef

from apps.automations import catalog
from apps.customers.choices import OrderStatus
from apps.tagging.models import CustomerTag, ProductTag


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


# --- Triggers --------------------------------------------------------------------------------------


def _register_triggers() -> None:
    from apps.automations.registry import TriggerSpec, register_trigger

    register_trigger(
        TriggerSpec(
            name="customer.tag_added",
            label="Tag added to customer",
            description="A tag was added to a customer (filter on the tag's name).",
            scopes=("customer", "tag"),
            group="Customers",
        )
    )


_register_triggers()

# --- Actions ---------------------------------------------------------------------------------------


def _tag_names(params: dict) -> list[str]:
    from .services import tag_names_clean

    tags = params.get("tags") or []
    return tag_names_clean([tags] if isinstance(tags, str) else tags)


def _run_ref(context) -> str:
    return (getattr(context, "extra", None) or {}).get("cause") or "workflow"


def run_add_tags(context, params: dict, effect_key: str) -> dict:
    """Add tags with source=workflow and the run as source_ref; tags already there are left alone."""
    from .choices import TagSource
    from .services import tags_add

    names = _tag_names(params)
    added = tags_add(customer=context.customer, names=names, source=TagSource.WORKFLOW, source_ref=_run_ref(context))
    return {"tags": names, "added": sorted(row.tag.name for row in added)}


def run_remove_tags(context, params: dict, effect_key: str) -> dict:
    from .choices import TagSource
    from .services import tags_remove

    names = _tag_names(params)
    removed = tags_remove(
        customer=context.customer, names=names, source=TagSource.WORKFLOW, source_ref=_run_ref(context)
    )
    return {"tags": names, "removed": sorted(removed)}


def _preview(verb: str):
    def preview(context, params: dict) -> dict:
        return {f"would_{verb}": _tag_names(params)}

    return preview


def _register_actions() -> None:
    from apps.automations.registry import ActionSpec, ParamSpec, register_action

    tags = ParamSpec(
        name="tags",
        type="text_list",
        label="Tags",
        required=True,
        help="Dynamic parameters allowed, e.g. {{ order.currency }} buyer; a list (product tags) adds each.",
        dynamic=True,
    )
    register_action(
        ActionSpec(
            name="customer.add_tags",
            label="Add customer tags",
            description="Add one or more tags to the customer.",
            group="Tags",
            params=[tags],
            run=run_add_tags,
            preview=_preview("add"),
        )
    )
    register_action(
        ActionSpec(
            name="customer.remove_tags",
            label="Remove customer tags",
            description="Remove one or more tags from the customer.",
            group="Tags",
            params=[tags],
            run=run_remove_tags,
            preview=_preview("remove"),
        )
    )


_register_actions()
