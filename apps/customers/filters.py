"""One FilterSet per list; used by the API (`filterset_class`) and by pages that list the same rows."""

import django_filters
from django.db.models import QuerySet

from .choices import CustomerState, OrderChannel, OrderStatus
from .models import Cart, Customer, CustomerEvent, DraftOrder, ExchangeRate, Order, Product, Store


class CustomerFilterSet(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    email = django_filters.CharFilter(lookup_expr="iexact")
    tag = django_filters.CharFilter(method="filter_tag", label="Tag name (case-insensitive)")
    country = django_filters.CharFilter(lookup_expr="iexact")
    state = django_filters.ChoiceFilter(choices=CustomerState.choices)
    accepts_marketing = django_filters.BooleanFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Customer
        fields = ["external_id", "email", "tag", "country", "state", "accepts_marketing"]

    def filter_tag(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        # A subquery rather than a join: a customer appears once however the tags match. The reverse
        # relation is named, not imported: tagging depends on customers, never the other way round.
        tagged = Customer.objects.filter(customer_tags__tag__name__iexact=value.strip()).values("pk")
        return queryset.filter(pk__in=tagged)


class ProductFilterSet(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    sku = django_filters.CharFilter()
    title = django_filters.CharFilter(lookup_expr="icontains")
    tag = django_filters.CharFilter(method="filter_tag")

    class Meta:
        model = Product
        fields = ["external_id", "sku", "title", "tag"]

    def filter_tag(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        tagged = Product.objects.filter(product_tags__tag__name__iexact=value.strip()).values("pk")
        return queryset.filter(pk__in=tagged)


class OrderFilterSet(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    customer = django_filters.NumberFilter(field_name="customer_id")
    customer_external_id = django_filters.CharFilter(field_name="customer__external_id")
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    channel = django_filters.ChoiceFilter(choices=OrderChannel.choices)
    placed_after = django_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placed_before = django_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["external_id", "customer", "customer_external_id", "status", "channel"]


class DraftOrderFilterSet(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    customer = django_filters.NumberFilter(field_name="customer_id")

    class Meta:
        model = DraftOrder
        fields = ["external_id", "customer"]


class CartFilterSet(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    customer = django_filters.NumberFilter(field_name="customer_id")
    abandoned = django_filters.BooleanFilter(field_name="abandoned_at", lookup_expr="isnull", exclude=True)
    recovered = django_filters.BooleanFilter(field_name="recovered_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Cart
        fields = ["external_id", "customer", "abandoned", "recovered"]


class CustomerEventFilterSet(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    name = django_filters.CharFilter()
    customer = django_filters.NumberFilter(field_name="customer_id")
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = CustomerEvent
        fields = ["external_id", "name", "customer"]


class StoreFilterSet(django_filters.FilterSet):
    code = django_filters.CharFilter()
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Store
        fields = ["code", "is_active"]


class ExchangeRateFilterSet(django_filters.FilterSet):
    currency = django_filters.CharFilter(lookup_expr="iexact")
    day_from = django_filters.DateFilter(field_name="day", lookup_expr="gte")
    day_to = django_filters.DateFilter(field_name="day", lookup_expr="lte")

    class Meta:
        model = ExchangeRate
        fields = ["currency"]
