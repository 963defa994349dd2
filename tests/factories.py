"""factory-boy factories shared by every test package. Orders go through the service so that the
customer's summary figures stay exactly as production keeps them."""

from datetime import datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from apps.customers import services as customer_services
from apps.customers.models import Customer, Order, Product, Store
from apps.customers.services import LineInput


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    is_superuser = True
    password = factory.PostGenerationMethodCall("set_password", "pass12345")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "US"
    preferred_currency = "USD"
    # An account created for them that they have not activated yet: `customer_activate` makes it registered.
    state = "invited"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    external_id = factory.Sequence(lambda n: f"prod-{n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    name = factory.Sequence(lambda n: f"Store {n}")
    code = factory.Sequence(lambda n: f"store-{n}")
    latitude = 52.5200
    longitude = 13.4050
    radius_m = 200


def make_order(
    customer: Customer,
    *,
    total: Decimal | str | int = "100.00",
    currency: str = "USD",
    placed_at: datetime | None = None,
    channel: str = "online",
    shipping_country: str = "US",
    titles: list[str] | None = None,
    products: list[Product] | None = None,
    external_id: str | None = None,
) -> Order:
    """Create an order through `order_create`: one line per title/product, sharing `total` evenly."""
    total = Decimal(str(total))
    line_specs = [(p.title, p) for p in products] if products else [(title, None) for title in titles or ["Item"]]
    share = (total / len(line_specs)).quantize(Decimal("0.01"))
    lines = [LineInput(title=title, quantity=1, unit_price=share, product=product) for title, product in line_specs]
    order, _ = customer_services.order_create(
        customer=customer,
        currency=currency,
        lines=lines,
        total=total,
        placed_at=placed_at,
        channel=channel,
        shipping_country=shipping_country,
        external_id=external_id,
    )
    return order
