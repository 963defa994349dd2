"""Every registered admin (of every app) loads: changelist, add page, and the change page of one row."""

from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_data(db):
    call_command("load_demo", "--no-admin", stdout=StringIO())


def test_every_admin_changelist_add_and_change_page_loads(admin_client, demo_data):
    failures = []
    checked = 0
    with_rows = 0
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls = [reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")]
        if model_admin.has_add_permission(_superuser_request()):
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        row = model_admin.get_queryset(_superuser_request()).order_by("pk").first()
        if row is not None:
            with_rows += 1
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
        for url in urls:
            checked += 1
            try:
                response = admin_client.get(url)
            except Exception as error:  # report every broken page, not just the first
                failures.append(f"{url}: {type(error).__name__}: {error}")
                continue
            if response.status_code != 200:
                failures.append(f"{url}: {response.status_code}")

    assert failures == []
    # Every model's changelist was opened, and the demo data gives at least half the models a row whose change page
    # was opened too (read-only logs such as deliveries or form submissions may have none in the demo).
    assert checked >= len(admin.site._registry) + with_rows
    assert 2 * with_rows >= len(admin.site._registry)


def _superuser_request():
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="admin")
    return request


def test_customer_changelist_query_count_is_capped(admin_client, demo_data, django_assert_max_num_queries):
    url = reverse("admin:customers_customer_changelist")
    with django_assert_max_num_queries(12):
        response = admin_client.get(url)

    assert response.status_code == 200
    assert b"anna.schmidt@example.com" in response.content


def test_order_changelist_query_count_is_capped(admin_client, demo_data, django_assert_max_num_queries):
    with django_assert_max_num_queries(14):
        response = admin_client.get(reverse("admin:customers_order_changelist"))

    assert response.status_code == 200
    assert b"demo-o-1001" in response.content
