"""Installing a template through the API can activate it in the same call; the workflow remembers its template."""

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from apps.automations.models import Workflow
from tests.factories import UserFactory

from .conftest import tagged_with

pytestmark = pytest.mark.django_db


def test_install_with_activate_is_live_at_once_and_runs_filter_by_template(clock, feed):
    payload = feed.install("offline_customer", {"tag": "In store"})
    feed.install("first_time_buyer")
    shop = feed.customer("c-shop")

    feed.order(shop, "10.00", channel="pos")

    assert (payload["status"], payload["template"], payload["version"]) == ("active", "offline_customer", 1)
    assert tagged_with("In store") == {"c-shop"}
    runs = feed.get("/api/v1/workflow-runs/?template=offline_customer")["results"]
    assert [(run["workflow"], run["status"]) for run in runs] == [(payload["id"], "succeeded")]
    assert len(feed.get("/api/v1/workflow-runs/?template=first_time_buyer")["results"]) == 1
    assert feed.get("/api/v1/workflow-runs/?template=nothing")["results"] == []
    assert [row["id"] for row in feed.get("/api/v1/workflows/?template=offline_customer")["results"]] == [payload["id"]]


def test_install_without_activate_stays_a_draft_that_remembers_its_template(feed):
    payload = feed.post("/api/v1/workflow-templates/unsubscribed/install/", {"params": {}}, expect=201)

    assert (payload["status"], payload["template"], payload["version"]) == ("draft", "unsubscribed", None)
    assert Workflow.objects.get(pk=payload["id"]).template == "unsubscribed"


def test_activating_on_install_needs_the_activate_permission_and_a_refusal_installs_nothing(db):
    author = UserFactory(username="author", is_superuser=False)
    author.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_workflow", "view_workflow", "change_workflow"])
    )
    client = APIClient()
    client.force_authenticate(author)

    refused = client.post(
        "/api/v1/workflow-templates/unsubscribed/install/", {"params": {}, "activate": True}, format="json"
    )
    drafted = client.post("/api/v1/workflow-templates/unsubscribed/install/", {"params": {}}, format="json")

    assert refused.status_code == 403
    assert refused.json()["error"] == "permission_denied"
    assert drafted.status_code == 201
    assert list(Workflow.objects.values_list("status", flat=True)) == ["draft"]


def test_a_marketer_installs_and_activates(db):
    marketer = UserFactory(username="marketer", is_superuser=False)
    marketer.groups.add(Group.objects.get(name="marketer"))
    client = APIClient()
    client.force_authenticate(marketer)

    response = client.post(
        "/api/v1/workflow-templates/unsubscribed/install/", {"params": {}, "activate": True}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["status"] == "active"
