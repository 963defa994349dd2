"""The delivery list's one FilterSet (API and pages)."""

import django_filters

from .choices import Channel, DeliveryReason, DeliveryStatus, Purpose
from .models import Delivery


class DeliveryFilterSet(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id")
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    purpose = django_filters.ChoiceFilter(choices=Purpose.choices)
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    reason = django_filters.ChoiceFilter(choices=DeliveryReason.choices)
    cause = django_filters.CharFilter(max_length=100)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Delivery
        fields = ["customer", "channel", "purpose", "status", "reason", "cause"]
