"""The template gallery API and the install_templates command."""

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.automations import gallery
from apps.automations.models import Workflow
from apps.platform.authentication import token_digest, token_generate
from apps.platform.models import ApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def api(user):
    raw = token_generate()
    ApiToken.objects.create(user=user, name="tests", prefix=raw[:8], digest=token_digest(raw), scopes=["workflows"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_list_shows_every_template_with_its_params_in_constant_queries(api, django_assert_num_queries, settings):
    settings.API_AUTH_CACHE_SECONDS = 0  # count the token lookup every time (a slow run would outlive the cache)
    api.get("/api/v1/workflow-templates/")  # the token's last-used time is written once a minute
    with django_assert_num_queries(1):  # the token lookup; templates live in code
        response = api.get("/api/v1/workflow-templates/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(gallery.template_list())
    inactive = next(item for item in body["results"] if item["key"] == "inactive_high_value")
    assert (inactive["trigger"], inactive["kind"]) == ("customer.state_tag", "state")
    assert [(p["name"], p["type"], p["default"]) for p in inactive["params"]] == [
        ("tag", "tag", "Inactive high-value customer"),
        ("days", "days", 30),
        ("min_spent", "money", "500"),
    ]
    assert {item["key"]: item["kind"] for item in body["results"]}["first_time_buyer"] == "event"


def test_detail_previews_the_built_definition(api):
    response = api.get("/api/v1/workflow-templates/first_time_buyer/")

    assert response.status_code == 200
    assert response.json()["preview"]["definition"]["trigger"] == {
        "event": "order.created",
        "where": {"field": "customer.orders_count", "op": "eq", "value": 1},
    }
    assert api.get("/api/v1/workflow-templates/nope/").status_code == 404


def test_install_creates_a_draft_workflow_with_the_changed_params(api, user):
    response = api.post(
        "/api/v1/workflow-templates/high_value/install/",
        {"params": {"tag": "Whale", "min_orders": 4}, "name": "Whales"},
        format="json",
    )

    assert response.status_code == 201, response.content
    workflow = Workflow.objects.get(pk=response.json()["id"])
    assert (workflow.name, workflow.status, workflow.trigger, workflow.created_by) == (
        "Whales",
        "draft",
        "customer.state_tag",
        user,
    )
    assert workflow.definition["state"] == {"tag": "Whale"}
    assert workflow.definition["trigger"]["where"]["all"][0]["value"] == 4


def test_install_of_a_state_template_keeps_its_condition_and_tag(api):
    response = api.post(
        "/api/v1/workflow-templates/inactive_high_value/install/",
        {"params": {"min_spent": "750.50"}},
        format="json",
    )

    assert response.status_code == 201, response.content
    workflow = Workflow.objects.get(pk=response.json()["id"])
    assert (workflow.kind, workflow.schedule_cron, workflow.audience) == ("state", "", None)
    assert workflow.definition["trigger"]["where"]["all"][1] == {
        "field": "customer.total_spent",
        "op": "gte",
        "value": 750.5,
    }
    assert response.json()["kind"] == "state"


def test_install_with_bad_params_answers_400_with_paths_and_creates_nothing(api):
    response = api.post(
        "/api/v1/workflow-templates/high_value/install/",
        {"params": {"min_orders": 0, "min_spent": "lots", "colour": "red"}},
        format="json",
    )

    assert response.status_code == 400
    assert sorted(error["path"] for error in response.json()["errors"]) == [
        "params.colour",
        "params.min_orders",
        "params.min_spent",
    ]
    assert Workflow.objects.count() == 0


def test_install_of_an_unknown_template_is_404_and_anonymous_is_refused(api):
    assert api.post("/api/v1/workflow-templates/nope/install/", {}, format="json").status_code == 404
    assert APIClient().post("/api/v1/workflow-templates/staff/install/", {}, format="json").status_code in (401, 403)
    assert Workflow.objects.count() == 0


def test_install_replayed_with_the_same_idempotency_key_creates_one_workflow(api):
    body = {"params": {"tag": "Staff member"}}

    first = api.post("/api/v1/workflow-templates/staff/install/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/workflow-templates/staff/install/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert Workflow.objects.count() == 1


def test_every_template_installs_and_activates_with_its_defaults():
    out = StringIO()

    call_command("install_templates", "--activate", stdout=out)

    keys = [spec.key for spec in gallery.template_list()]
    assert Workflow.objects.count() == len(keys) + 2  # spend tiers: one state tag per tier
    assert set(Workflow.objects.values_list("status", flat=True)) == {"active"}
    assert f"{len(keys)} installed, 0 already present" in out.getvalue()


def test_install_templates_is_idempotent_and_if_empty_respects_existing_workflows():
    call_command("install_templates", "--key", "staff", "--key", "registered", stdout=StringIO())
    again = StringIO()
    call_command("install_templates", "--key", "staff", stdout=again)
    skipped = StringIO()
    call_command("install_templates", "--if-empty", stdout=skipped)

    assert sorted(Workflow.objects.values_list("name", flat=True)) == [
        "Tag registered customers",
        "Tag staff accounts",
    ]
    assert "0 installed, 1 already present" in again.getvalue()
    assert "nothing installed" in skipped.getvalue()
    assert set(Workflow.objects.values_list("status", flat=True)) == {"draft"}
