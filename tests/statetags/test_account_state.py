"""
Guests and accounts through the API with the worker running: a guest checkout is recorded as a guest,
never tagged "registered" and fires no `customer.registered`; an invited or guest customer activating
their account fires `customer.activated` (a guest registering also `customer.registered`).
"""

import pytest

from apps.automations.models import WorkflowRun
from apps.customers.models import Customer, DomainEvent
from apps.customers.services import customer_state_set
from tests.factories import CustomerFactory

from .conftest import tagged_with

pytestmark = pytest.mark.django_db


def events(name: str) -> list[int]:
    return list(DomainEvent.objects.filter(name=name).order_by("pk").values_list("customer_id", flat=True))


def test_guests_are_never_tagged_registered_and_fire_no_customer_registered(clock, feed):
    feed.install("registered", {"tag": "Member"})

    member = feed.customer("c-member", email="m@example.com")
    guest = feed.customer("c-guest", email="g@example.com", state="guest")
    invited = feed.customer("c-invited", state="invited")
    feed.order(guest, "20.00")  # orders from guests are recorded as today
    embedded = feed.post(
        "/api/v1/orders/",
        {
            "customer": {"external_id": "c-guest-2", "state": "guest"},
            "currency": "USD",
            "lines": [{"title": "Item", "quantity": 1, "unit_price": "5.00"}],
        },
    )

    assert tagged_with("Member") == {"c-member"}
    assert events("customer.registered") == [member.pk]
    assert guest.state == "guest" and invited.state == "invited"
    assert Customer.objects.get(pk=embedded["customer_id"]).state == "guest"
    assert Customer.objects.get(pk=guest.pk).orders_count == 1


def test_a_guest_who_registers_fires_registered_and_activated_and_gets_the_tag(clock, feed):
    feed.install("registered", {"tag": "Member"})
    guest = feed.customer("c-guest", state="guest")

    updated = feed.patch(f"/api/v1/customers/{guest.pk}/", {"state": "registered"})
    feed.patch(f"/api/v1/customers/{guest.pk}/", {"state": "registered"})  # unchanged: nothing fires

    assert updated["state"] == "registered"
    assert events("customer.registered") == [guest.pk]
    assert events("customer.activated") == [guest.pk]
    assert tagged_with("Member") == {"c-guest"}
    run = WorkflowRun.objects.get(status="succeeded")
    assert run.customer_id == guest.pk


def test_activation_of_an_invited_customer_fires_customer_activated_once(clock, feed):
    activated_workflow = feed.post(
        "/api/v1/workflows/",
        {
            "name": "Welcome",
            "definition": {
                "schema": 1,
                "trigger": {"event": "customer.activated"},
                "steps": [{"action": "customer.add_tags", "params": {"tags": ["Activated"]}}],
            },
        },
        expect=201,
    )
    feed.post(f"/api/v1/workflows/{activated_workflow['id']}/activate/")
    invited = feed.customer("c-inv", state="invited")

    answer = feed.post(f"/api/v1/customers/{invited.pk}/activate/")
    feed.post(f"/api/v1/customers/{invited.pk}/activate/")

    assert answer["state"] == "registered"
    assert events("customer.activated") == [invited.pk]
    assert events("customer.registered") == []  # an invited account was not created registered
    assert tagged_with("Activated") == {"c-inv"}


def test_disabled_customers_cannot_be_activated_and_disabling_fires_nothing(clock, feed):
    customer = feed.customer("c-1")

    feed.patch(f"/api/v1/customers/{customer.pk}/", {"state": "disabled"})
    refused = feed.client.post(f"/api/v1/customers/{customer.pk}/activate/", format="json")

    assert refused.status_code == 400
    assert refused.json()["errors"][0]["path"] == "state"
    assert Customer.objects.get(pk=customer.pk).state == "disabled"
    assert events("customer.activated") == []


def test_an_unknown_state_is_a_400_with_its_path_and_writes_nothing(feed):
    response = feed.client.post("/api/v1/customers/", {"external_id": "x", "state": "vip"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "state"
    assert Customer.objects.count() == 0


def test_state_filter_and_the_connector_service(django_capture_on_commit_callbacks):
    guest = CustomerFactory(state="guest")
    with django_capture_on_commit_callbacks(execute=True):
        customer_state_set(customer=guest, state="registered", cause="connector:shopify")

    assert Customer.objects.get(pk=guest.pk).state == "registered"
    assert list(DomainEvent.objects.order_by("pk").values_list("name", "cause")) == [
        ("customer.registered", "connector:shopify"),
        ("customer.activated", "connector:shopify"),
    ]


def test_csv_import_records_account_states(tmp_path, capsys):
    from django.core.management import call_command

    source = tmp_path / "customers.csv"
    source.write_text("external_id,email,state\nc-1,a@example.com,guest\nc-2,b@example.com,\nc-3,c@example.com,vip\n")

    with pytest.raises(Exception, match="1 bad row"):
        call_command("import_csv", "customers", str(source))

    assert dict(Customer.objects.values_list("external_id", "state")) == {"c-1": "guest", "c-2": "registered"}
    assert "line 4: state:" in capsys.readouterr().err
    assert events("customer.registered") == [Customer.objects.get(external_id="c-2").pk]
