"""What the campaigns app offers the automation engine: the `customer.segments` field.

It also installs the engine's validator and compiler into `apps.campaigns.audience` so segments use
the shared condition language without the campaigns app importing the engine elsewhere.
"""

from django.db.models import F, OuterRef

from apps.automations import catalog
from apps.automations.conditions import audience_queryset, condition_validate

from . import audience
from .models import SegmentMember

# --- Fields (condition language catalog) ---------------------------------------------------------


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


def _validate(condition):
    return [
        (error.path, error.message)
        for error in condition_validate(condition, path="", scopes=("customer",), audience=True)
    ]


audience.install(validator=_validate, compiler=lambda condition, now: audience_queryset(condition, now=now))
