"""Read queries of the data plane, with the joins and prefetches their callers need (no N+1)."""

from django.db.models import Prefetch, QuerySet

from .models import Cart, Customer, CustomerEvent, DraftOrder, ExchangeRate, Order, OrderLine, Product, Refund, Store


def customer_list() -> QuerySet[Customer]:
    """Customers with their tags (`customer_tags__tag`) and consents prefetched."""
    return Customer.objects.prefetch_related("customer_tags__tag", "consents")


def product_list() -> QuerySet[Product]:
    """Products with their tags prefetched (`product_tags__tag`)."""
    return Product.objects.prefetch_related("product_tags__tag")


def order_list() -> QuerySet[Order]:
    """Orders with customer and store joined, lines (with product) and refunds prefetched."""
    return Order.objects.select_related("customer", "store").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("product")),
        Prefetch("refunds", queryset=Refund.objects.order_by("created_at", "pk")),
    )


def order_get(*, pk: int) -> Order:
    return order_list().get(pk=pk)


def draft_order_list() -> QuerySet[DraftOrder]:
    return DraftOrder.objects.select_related("customer")


def cart_list() -> QuerySet[Cart]:
    return Cart.objects.select_related("customer")


def custom_event_list() -> QuerySet[CustomerEvent]:
    return CustomerEvent.objects.select_related("customer")


def store_list() -> QuerySet[Store]:
    return Store.objects.all()


def exchange_rate_list() -> QuerySet[ExchangeRate]:
    """Rates, newest day first per currency."""
    return ExchangeRate.objects.order_by("currency", "-day")
