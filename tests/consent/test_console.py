"""Consents and their history on the customer 360° page; the suppression list in the admin."""

import pytest
from django.contrib.auth.models import Group

from apps.customers.consent import services as consent
from apps.customers.consent.models import Suppression
from apps.platform.models import AuditEntry
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def login(client, role):
    user = UserFactory(username=f"consent-{role}", is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def test_the_360_page_shows_each_consent_with_its_source_and_the_history(client):
    customer = CustomerFactory(email="ana@example.com", phone="+351911", accepts_marketing=True)
    consent.consent_set(customer=customer, channel="sms", purpose="marketing", status="granted", source="form:summer")
    consent.consent_withdraw(customer=customer, source="unsubscribe_link")
    consent.suppress("+351911", channel="sms", reason="complaint")
    login(client, "support")

    html = client.get(f"/admin/console/customers/{customer.pk}/").content.decode()

    email = (
        'data-consent="email-marketing"><strong>E-mail · marketing</strong>: '
        '<span class="console-status console-status-withdrawn">Withdrawn</span>'
    )
    sms = (
        'data-consent="sms-marketing"><strong>SMS · marketing</strong>: '
        '<span class="console-status console-status-granted">Granted</span> '
        '<span class="console-status console-status-failed">address suppressed</span>'
    )
    assert email in html and sms in html
    assert 'data-testid="consent-history"' in html
    assert "granted → withdrawn" in html and "none → granted" in html
    assert 'data-ref="form:summer"' in html


def test_the_360_page_costs_a_fixed_number_of_queries_for_consents(client, django_assert_max_num_queries):
    customer = CustomerFactory()
    for status in ("granted", "withdrawn", "granted", "withdrawn"):
        consent.consent_set(customer=customer, channel="email", purpose="marketing", status=status, source="admin")
    login(client, "support")
    with django_assert_max_num_queries(40) as few:
        client.get(f"/admin/console/customers/{customer.pk}/")
    for status in ("granted", "withdrawn") * 5:
        consent.consent_set(customer=customer, channel="sms", purpose="marketing", status=status, source="admin")
    with django_assert_max_num_queries(40) as many:
        client.get(f"/admin/console/customers/{customer.pk}/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_admin_adds_and_deletes_suppressions_through_the_service(admin_client):
    response = admin_client.post(
        "/admin/customers/suppression/add/",
        {"address": "Bob@Example.com", "channel": "email", "reason": "manual"},
    )

    assert response.status_code == 302
    row = Suppression.objects.get()
    assert (row.address, row.source) == ("bob@example.com", "admin")
    admin_client.post(f"/admin/customers/suppression/{row.pk}/delete/", {"post": "yes"})
    assert Suppression.objects.count() == 0
    assert list(
        AuditEntry.objects.filter(object_type="customers.suppression").values_list("action", flat=True).order_by("pk")
    ) == [
        "created",
        "deleted",
    ]


def test_admin_suppression_list_refuses_a_user_without_the_permission(client):
    login(client, "marketer")  # marketers read customers but manage no suppressions
    consent.suppress("ana@example.com", channel="email", reason="manual")

    assert client.get("/admin/customers/suppression/").status_code == 200
    response = client.post(
        "/admin/customers/suppression/add/", {"address": "b@example.com", "channel": "email", "reason": "manual"}
    )
    assert response.status_code == 403
    assert Suppression.objects.count() == 1
