import django_filters

from .models import Suppression


class SuppressionFilter(django_filters.FilterSet):
    address = django_filters.CharFilter(lookup_expr="iexact")
    search = django_filters.CharFilter(field_name="address", lookup_expr="icontains")

    class Meta:
        model = Suppression
        fields = ["address", "channel", "reason"]
