"""The builder's server side: permissions, the JSON endpoints the page calls, the pages' content."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def staff_with(*codenames):
    user = UserFactory(is_superuser=False, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="automations", codename__in=codenames))
    return user


def test_pages_need_staff_and_the_view_permission(client):
    # given a staff user without automations permissions
    client.force_login(staff_with())
    # when they open the builder's pages
    responses = [client.get(f"/admin/automations/{path}") for path in ["builder/", "builder/new/", "gallery/", "runs/"]]
    # then each is forbidden
    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    # and anonymous users are sent to the login page
    client.logout()
    response = client.get("/admin/automations/builder/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/automations/builder/"


def test_viewer_cannot_save(client):
    client.force_login(staff_with("view_workflow"))
    response = client.post("/admin/automations/builder/new/save/", data="{}", content_type="application/json")
    assert response.status_code == 403


def test_customer_search_finds_by_words_and_by_id(client, django_assert_num_queries):
    client.force_login(staff_with("view_workflow"))
    ada = CustomerFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    CustomerFactory(email="grace@example.com", first_name="Grace", last_name="Hopper")
    with django_assert_num_queries(5):  # session, user, permissions(2), customers
        by_words = client.get("/admin/automations/builder/customers/", {"q": "ada love"}).json()
    by_id = client.get("/admin/automations/builder/customers/", {"q": str(ada.pk)}).json()
    assert by_words == {"results": [{"id": ada.pk, "label": f"Ada Lovelace · ada@example.com · #{ada.pk}"}]}
    assert by_id == by_words


def test_test_subjects_lists_the_customers_latest_orders_for_an_order_trigger(client):
    client.force_login(staff_with("view_workflow"))
    customer = CustomerFactory()
    now = timezone.now()
    older = make_order(customer, total="10.00", currency="EUR", placed_at=now - timedelta(days=3))
    newer = make_order(customer, total="20.00", currency="USD", placed_at=now - timedelta(days=1))
    make_order(CustomerFactory(), total="30.00")
    body = client.get(
        "/admin/automations/builder/subjects/", {"customer": customer.pk, "trigger": "order.created"}
    ).json()
    assert body["subject"] == "order"
    assert [item["id"] for item in body["results"]] == [newer.pk, older.pk]
    assert body["results"][0]["label"].startswith(f"Order #{newer.pk} · 20.00 USD · online · ")
