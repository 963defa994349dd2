"""Every admin action of every registered ModelAdmin runs on a real changelist without a server error."""

from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_data(db):
    call_command("load_demo", "--no-admin", stdout=StringIO())


def test_every_admin_action_posts_through_the_changelist_without_a_500(admin_client, demo_data):
    from apps.customers.models import Customer
    from apps.loyalty import services as loyalty_services
    from apps.loyalty.models import Membership, Program

    # Members (with orders) so the loyalty actions have rows to act on.
    program = Program.objects.order_by("pk").first()
    for customer in Customer.objects.filter(orders__isnull=False).distinct().order_by("pk")[:3]:
        loyalty_services.member_join(customer=customer, program=program)
    assert Membership.objects.filter(program=program).count() == 3

    failures: list[str] = []
    ran: list[str] = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        pks = [str(pk) for pk in model_admin.get_queryset(_request()).order_by("pk").values_list("pk", flat=True)[:3]]
        if not pks:
            continue
        for name, (_func, action_name, _description) in model_admin.get_actions(_request()).items():
            steps = [{}, {"post": "yes"}] if name == "delete_selected" else [{}]
            for extra in steps:
                label = f"{opts.label}.{action_name}{' (confirmed)' if extra else ''}"
                with transaction.atomic():
                    try:
                        response = admin_client.post(
                            url, {"action": name, admin.helpers.ACTION_CHECKBOX_NAME: pks, "index": 0, **extra}
                        )
                    except Exception as error:  # report every broken action, not just the first
                        failures.append(f"{label}: {type(error).__name__}: {error}")
                    else:
                        if response.status_code >= 500:
                            failures.append(f"{label}: {response.status_code}")
                        ran.append(label)
                    transaction.set_rollback(True)

    assert failures == []
    assert "loyalty.Membership.recalculate_tiers" in ran
    assert len(ran) >= len(admin.site._registry)


def _request():
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="admin")
    return request
