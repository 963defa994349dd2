"""Read queries of the tagging app."""

from django.db.models import Count, QuerySet

from .models import CustomerTag, Tag


def tag_list() -> QuerySet[Tag]:
    """Tags with `customer_count` and `product_count` annotated (one query, no N+1)."""
    return Tag.objects.annotate(
        customer_count=Count("customer_tags", distinct=True), product_count=Count("product_tags", distinct=True)
    ).order_by("name")  # Meta.ordering is not applied to aggregating queries


def customer_tag_list() -> QuerySet[CustomerTag]:
    return CustomerTag.objects.select_related("customer", "tag", "added_by")


def condition_suggestions() -> dict[str, list[str]]:
    """
    What the condition editor's pickers offer as you type (tags, product titles, currencies, countries,
    custom event names), by the field catalog's `suggest` key. Bounded lists: free text stays possible
    for anything not listed.
    """
    from apps.customers.models import Customer, CustomerEvent, Order, Product

    return {
        "tags": list(Tag.objects.order_by("name").values_list("name", flat=True)[:500]),
        "products": list(Product.objects.order_by("title").values_list("title", flat=True).distinct()[:300]),
        "currencies": sorted(
            {code for code in Order.objects.values_list("currency", flat=True).distinct()[:50] if code}
            | {"USD", "EUR", "GBP", "VND", "CNY", "RUB", "JPY"}
        ),
        "countries": sorted(
            {code for code in Customer.objects.values_list("country", flat=True).distinct()[:300] if code}
            | {"US", "GB", "DE", "FR", "VN", "CN", "RU", "JP"}
        ),
        "event_names": list(CustomerEvent.objects.order_by("name").values_list("name", flat=True).distinct()[:200]),
    }
