"""
Preferred currency through the API with the worker running: the currency paid in most (by count; ties
broken by the most recent order), kept current as orders arrive, cancel or are fully refunded, unless the
integrator sets it; the state template's tag follows it, one currency tag at a time.
"""

from datetime import timedelta

import pytest

from apps.customers.models import Customer

from .conftest import NOW

pytestmark = pytest.mark.django_db


def preferred(customer) -> str:
    return Customer.objects.get(pk=customer.pk).preferred_currency


def test_preferred_currency_follows_the_majority_with_ties_to_the_most_recent_order(clock, feed):
    ana = feed.customer("c-ana")

    feed.order(ana, "10.00", currency="EUR", exchange_rate="1.1", placed_at=NOW - timedelta(days=3))
    assert preferred(ana) == "EUR"
    usd = feed.order(ana, "10.00", currency="USD", placed_at=NOW - timedelta(days=2))
    assert preferred(ana) == "USD"  # one each: the most recent order wins the tie
    feed.order(ana, "10.00", currency="EUR", exchange_rate="1.1", placed_at=NOW - timedelta(days=5))
    assert preferred(ana) == "EUR"  # two EUR, one USD
    late_usd = feed.order(ana, "10.00", currency="USD", placed_at=NOW - timedelta(days=1))
    assert preferred(ana) == "USD"  # two each, the latest order is in USD

    feed.cancel(late_usd)
    assert preferred(ana) == "EUR"
    feed.refund(usd, "4.00")  # a partial refund: still paid in USD
    assert preferred(ana) == "EUR"
    assert feed.get(f"/api/v1/customers/{ana.pk}/")["preferred_currency"] == "EUR"


def test_a_fully_refunded_order_no_longer_counts(clock, feed):
    bo = feed.customer("c-bo")
    feed.order(bo, "10.00", currency="EUR", exchange_rate="1.1", placed_at=NOW - timedelta(days=3))
    gbp = feed.order(bo, "10.00", currency="GBP", exchange_rate="1.3", placed_at=NOW - timedelta(days=1))
    assert preferred(bo) == "GBP"

    feed.refund(gbp, "10.00")

    assert preferred(bo) == "EUR"


def test_the_integrators_choice_wins_until_it_is_cleared(clock, feed):
    cy = feed.customer("c-cy", preferred_currency="jpy")
    feed.order(cy, "10.00", currency="USD")
    assert preferred(cy) == "JPY"
    assert feed.get(f"/api/v1/customers/{cy.pk}/")["preferred_currency_set_by_integrator"] is True

    feed.patch(f"/api/v1/customers/{cy.pk}/", {"preferred_currency": ""})

    assert preferred(cy) == "USD"
    assert Customer.objects.get(pk=cy.pk).preferred_currency_set_by_integrator is False


def test_preferred_currency_is_a_catalog_field(feed):
    fields = {field["name"]: field for field in feed.get("/api/v1/workflow-fields/")["fields"]}

    assert fields["customer.preferred_currency"]["type"] == "text"
    assert fields["customer.preferred_currency"]["audience"] is True
    assert fields["customer.state"]["choices"] == [
        ["guest", "Guest"],
        ["invited", "Invited"],
        ["registered", "Registered"],
        ["disabled", "Disabled"],
    ]
