"""The builder's pages read user-typed query parameters without 500s (found by QA on PostgreSQL)."""

import pytest
from django.contrib.auth.models import Permission

from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    user = UserFactory(is_superuser=False, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="automations", codename="view_workflow")
    )
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    "path",
    [
        "/admin/automations/builder/?q=a%00b",
        "/admin/automations/builder/?status=%00",
        "/admin/automations/builder/?trigger=%00",
        "/admin/automations/runs/?customer=a%00",
        "/admin/automations/runs/?customer=%C2%B2",
        "/admin/automations/runs/?customer=99999999999999999999",
        "/admin/automations/runs/?since=2026-99-99",
        "/admin/automations/runs/?until=2026-02-30",
    ],
)
def test_list_pages_ignore_unusable_filters(client, viewer, path):
    response = client.get(path)
    assert response.status_code == 200


def test_a_nul_in_the_workflow_search_is_dropped_not_sent_to_the_database(client, viewer):
    response = client.get("/admin/automations/builder/?q=tag%00")
    assert response.status_code == 200
    assert response.context["query"] == "tag"


def test_an_impossible_day_filter_is_ignored_and_echoed(client, viewer):
    response = client.get("/admin/automations/runs/?since=2026-99-99")
    assert response.status_code == 200
    assert response.context["since"] == "2026-99-99"
    assert list(response.context["page_obj"]) == []


@pytest.mark.parametrize("term", ["zz%00", "%C2%B2", "99999999999999999999"])
def test_customer_search_answers_json_for_odd_terms(client, viewer, term):
    CustomerFactory(email="ada@example.com")
    response = client.get(f"/admin/automations/builder/customers/?q={term}")
    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_customer_search_still_finds_by_id(client, viewer):
    ada = CustomerFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    response = client.get(f"/admin/automations/builder/customers/?q={ada.pk}")
    assert response.json() == {"results": [{"id": ada.pk, "label": f"Ada Lovelace · ada@example.com · #{ada.pk}"}]}


@pytest.mark.parametrize("customer", ["abc", "1.5", "%C2%B2", "99999999999999999999", ""])
def test_test_subjects_for_a_customer_that_is_not_an_id_is_404(client, viewer, customer):
    response = client.get(f"/admin/automations/builder/subjects/?trigger=order.created&customer={customer}")
    assert response.status_code == 404
