"""Dynamic parameters: catalog fields only, lists expand to one string per item, unknown names refused."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.customers import services
from apps.customers.services import LineInput
from apps.tagging.services import product_tags_set
from loyalty_site.lib.conditions import EvaluationContext
from loyalty_site.lib.conditions.templating import template_render, template_validate
from tests.factories import CustomerFactory, ProductFactory

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def messages(text, scopes=("customer", "order", "product")):
    return [str(error) for error in template_validate(text, path="steps[0].params.tags[1]", scopes=scopes)]


def test_known_variables_validate():
    assert messages("{{ order.currency }} buyer") == []
    assert messages("{{product.tags}} fan from {{ customer.country }}") == []
    assert messages("no variables at all") == []
    assert messages("{{ customer.attributes.weather_zone }}") == []


def test_unknown_unavailable_and_unsafe_variables_are_refused_with_the_path():
    assert messages("{{ order.secret }}") == ['steps[0].params.tags[1]: unknown variable "order.secret"']
    assert messages("{{ cart.total }}") == [
        'steps[0].params.tags[1]: "cart.total" is not available here (it needs a cart)'
    ]
    assert messages("{{ order.lines }}") == ['steps[0].params.tags[1]: "order.lines" is a list of lines, not text']
    assert messages("{{ order.currency|upper }}") == [
        'steps[0].params.tags[1]: "{{ order.currency|upper }}" is not a field name'
    ]
    assert messages("{{ customer.__class__ }}") == ['steps[0].params.tags[1]: unknown variable "customer.__class__"']
    assert messages("{{ order.currency }") == ['steps[0].params.tags[1]: unbalanced "{{" or "}}"']


@pytest.mark.django_db
def test_scalars_render_once_and_lists_expand_to_one_string_per_item():
    customer = CustomerFactory(country="VN", attributes={"weather_zone": "north"})
    product = ProductFactory(title="Lego")
    product_tags_set(product=product, names=["Toys", "Kids"])
    order, _ = services.order_create(
        customer=customer,
        currency="eur",
        lines=[LineInput(title="Lego", quantity=1, unit_price=Decimal("9.90"), product=product)],
        placed_at=NOW,
    )
    context = EvaluationContext(customer=customer, now=NOW, order=order, product=product)

    assert template_render("{{ order.currency }} buyer", context) == ["EUR buyer"]
    assert template_render("{{ product.tags }} fan", context) == ["Kids fan", "Toys fan"]
    assert template_render("{{ product.tags }} in {{ customer.country }}", context) == ["Kids in VN", "Toys in VN"]
    assert template_render("{{ order.total }} / {{ order.placed_at }}", context) == ["9.90 / 2026-06-15"]
    assert template_render("zone {{ customer.attributes.weather_zone }}", context) == ["zone north"]
    assert template_render("Plain", context) == ["Plain"]


@pytest.mark.django_db
def test_empty_list_renders_nothing_and_unset_scalar_renders_empty():
    product = ProductFactory(title="Untagged")
    context = EvaluationContext(customer=None, now=NOW, product=product)

    assert template_render("{{ product.tags }} fan", context) == []
    assert template_render("[{{ order.currency }}]", context) == ["[]"]
