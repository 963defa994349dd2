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
