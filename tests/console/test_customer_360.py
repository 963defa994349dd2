"""The customer 360° page: every section a role may read, readable references, 403 without the permission."""

import pytest
from django.contrib.auth.models import Group

from apps.automations.console.references import reference_describe
from apps.platform.services import api_token_create
from apps.tagging.services import tags_add
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def login(client, role):
    user = UserFactory(username=f"c360-{role}", is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def test_the_page_shows_profile_tags_with_their_source_orders_and_links_references(client):
    customer = CustomerFactory(email="ana@example.com", first_name="Ana", last_name="Lima", country="PT")
    make_order(customer, total="120.00")
    admin = UserFactory(username="boss")
    _token, _raw = api_token_create(user=admin, name="shop backend", scopes=["ingest"])
    tags_add(customer=customer, names=["VIP"], source="api", source_ref=f"api:token:{_token.pk}")
    tags_add(customer=customer, names=["Winback"], source="workflow", source_ref="bulk_run:999")
    login(client, "marketer")

    page = client.get(f"/admin/console/customers/{customer.pk}/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Ana Lima" in html and "ana@example.com" in html
    assert "API token “shop backend”" in html  # a readable name (the marketer may not open tokens)
    assert "Bulk run #999 (deleted)" in html
    assert 'id="c360-orders"' in html and "120.00" in html
    assert "Edit customer" not in html  # a marketer may not edit contact data


def test_sections_follow_the_role_and_a_user_without_customer_access_is_refused(client):
    customer = CustomerFactory()
    login(client, "support")
    page = client.get(f"/admin/console/customers/{customer.pk}/").content.decode()
    assert 'id="c360-segments"' not in page  # support reads no segments
    assert f'href="/admin/customers/customer/{customer.pk}/change/">Edit customer' in page  # a separate action

    client.logout()
    client.force_login(UserFactory(username="nobody", is_superuser=False))
    assert client.get(f"/admin/console/customers/{customer.pk}/").status_code == 403


def test_references_become_links_for_whoever_may_open_them():
    from apps.automations.models import Workflow, WorkflowRun

    workflow = Workflow.objects.create(name="Win back", definition={})
    run = WorkflowRun.objects.create(workflow=workflow, kind="bulk")
    boss = UserFactory(username="root")

    described = reference_describe(f"bulk_run:{run.pk}", boss)

    assert described == {"label": f"Bulk run #{run.pk} of “Win back”", "url": f"/admin/automations/runs/{run.pk}/"}
    assert reference_describe("import:customers.csv", boss) == {"label": "CSV import customers.csv", "url": None}
    assert reference_describe("", boss) == {"label": "—", "url": None}
