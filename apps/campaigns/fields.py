"""The campaigns fields of the condition language: `customer.segments` (imported by CampaignsConfig.ready)."""

from django.db.models import F, OuterRef

from loyalty_site.lib.conditions import catalog

from .models import SegmentMember


def _read_segments(context, **kwargs):
    customer = context.customer
    if customer is None or customer.pk is None:
        return []
    return context.cached(
        ("customer.segments", customer.pk),
        lambda: sorted(SegmentMember.objects.filter(customer_id=customer.pk).values_list("segment__name", flat=True)),
    )


def _segment_items(**kwargs):
    return SegmentMember.objects.filter(customer_id=OuterRef("pk")), F("segment__name")


catalog.register_field(
    catalog.FieldSpec(
        name="customer.segments",
        type="tags",
        label="Segments",
        scope="customer",
        description="Dynamic segments the customer belongs to (as of the segment's last refresh).",
        read=_read_segments,
        items=_segment_items,
        example="VIP",
    )
)
