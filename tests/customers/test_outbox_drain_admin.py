"""The outbox's drain marks in the admin: read-only, behind the view permission alone."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from apps.customers.models import OutboxDrain
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_outboxdrain_changelist")


def _staff(client, *codenames: str):
    user = UserFactory(username="operator", is_staff=True, is_superuser=False)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="customers", codename__in=codenames))
    client.force_login(user)
    return user


def test_a_staff_user_without_the_view_permission_gets_403(client):
    OutboxDrain.objects.create(consumer="automations", queued_at=timezone.now())
    # the change permission (which Django's admin would take for viewing) does not open it either
    _staff(client, "change_outboxdrain")

    response = client.get(CHANGELIST)

    assert response.status_code == 403


def test_the_view_permission_shows_each_consumers_mark_read_only(client):
    now = timezone.now()
    OutboxDrain.objects.create(consumer="automations", queued_at=now, holder="lingering")
    OutboxDrain.objects.create(consumer="loyalty", queued_at=now - timedelta(minutes=5), holder="queued")
    _staff(client, "view_outboxdrain")

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    rows = [(mark.consumer, mark.holder) for mark in response.context["cl"].result_list]
    assert rows == [("automations", "lingering"), ("loyalty", "queued")]
    content = response.content.decode()
    assert "a drain lingering before its next claim" in content and "a queued drain (sent by a writer)" in content
    assert content.count('alt="True"') == 1 and content.count('alt="False"') == 1  # the loyalty mark is stale
    # nothing to add, change or delete
    assert reverse("admin:customers_outboxdrain_add") not in content
    assert client.get(reverse("admin:customers_outboxdrain_add")).status_code == 403
    change = client.get(reverse("admin:customers_outboxdrain_change", args=["loyalty"]))
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    assert (
        client.post(reverse("admin:customers_outboxdrain_delete", args=["loyalty"]), {"post": "yes"}).status_code == 403
    )
    assert OutboxDrain.objects.count() == 2
