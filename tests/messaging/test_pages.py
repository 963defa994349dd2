"""Deliveries on the customer 360° page and the run page; the cockpit inbox with unread count and mark-read."""

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from apps.automations.models import WorkflowRun
from apps.customers import services as customer_services
from apps.customers.messaging import services
from apps.customers.messaging.models import Delivery
from apps.customers.messaging.services import Content
from apps.loyalty import services as loyalty_services
from apps.loyalty.cockpit import cockpit_path
from tests.automations.test_engine_support import active_workflow
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def login(client, role):
    user = UserFactory(username=f"msg-{role}", is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def in_app(customer, key, subject="Welcome", text="Hello"):
    return services.message_send(
        key=key, channel="in_app", purpose="marketing", customer=customer, content=Content(subject=subject, text=text)
    )


@pytest.fixture
def member():
    cache.clear()
    program = program_make(name="Coffee Club")
    membership, _ = loyalty_services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    return membership


def test_the_customer_page_lists_deliveries_with_status_reason_and_cause(client, fire):
    active_workflow(
        "welcome", "customer.activated", [{"action": "notify.email", "params": {"subject": "Hi", "body": "x"}}]
    )
    customer = CustomerFactory(accepts_marketing=False)
    fire(customer_services.customer_activate, customer=customer)
    run = WorkflowRun.objects.get()
    login(client, "marketer")

    html = client.get(f"/admin/console/customers/{customer.pk}/").content.decode()

    assert 'data-testid="deliveries"' in html
    assert "Suppressed</span> · No consent" in html
    assert f"/admin/automations/runs/{run.pk}/" in html  # the cause is a link to the run


def test_the_run_page_lists_the_runs_messages(client, fire):
    active_workflow(
        "welcome", "customer.activated", [{"action": "notify.email", "params": {"subject": "Hi", "body": "x"}}]
    )
    customer = CustomerFactory(email="ana@example.com")
    fire(customer_services.customer_activate, customer=customer)
    run = WorkflowRun.objects.get()
    login(client, "marketer")

    html = client.get(f"/admin/automations/runs/{run.pk}/").content.decode()

    assert 'data-testid="run-deliveries"' in html
    assert "E-mail to ana@example.com: Hi" in html


def test_the_cockpit_shows_the_inbox_with_the_unread_count_and_marks_read(client, member):
    first = in_app(member.customer, "a", subject="Double points this weekend")
    in_app(member.customer, "b", subject="New reward")
    in_app(CustomerFactory(), "c", subject="Someone else's")
    path = cockpit_path(member)

    html = client.get(path).content.decode()
    assert 'data-testid="inbox-unread" aria-label="2 unread">2<' in html
    assert "Double points this weekend" in html and "Someone else" not in html

    response = client.post(f"{path}messages/{first.pk}/read/")
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.read_at is not None
    assert 'aria-label="1 unread">1<' in client.get(path).content.decode()


def test_a_member_cannot_mark_someone_elses_message_nor_use_a_bad_link(client, member):
    other = in_app(CustomerFactory(), "c")

    assert client.post(f"{cockpit_path(member)}messages/{other.pk}/read/").status_code == 302
    assert client.post(f"/me/forged-token/messages/{other.pk}/read/").status_code == 404
    assert client.get(f"{cockpit_path(member)}messages/{other.pk}/read/").status_code == 405
    assert Delivery.objects.get(pk=other.pk).read_at is None
