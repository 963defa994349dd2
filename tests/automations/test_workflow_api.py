from datetime import UTC, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.automations import services
from apps.automations.models import Workflow, WorkflowRun
from apps.customers import services as customer_services
from tests.automations.test_engine_support import active_workflow, add_tags, definition
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="marketer"))
    return client


def test_create_validates_the_whole_definition_and_answers_errors_by_path(api):
    bad = definition("order.created", [{"action": "customer.add_tags", "params": {"tags": ["{{ cart.total }}"]}}])

    response = api.post("/api/v1/workflows/", {"name": "x", "definition": bad}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert [error["path"] for error in body["errors"]] == ["steps[0].params.tags[0]"]
    assert Workflow.objects.count() == 0


def test_crud_activate_pause_and_versions(api):
    created = api.post(
        "/api/v1/workflows/",
        {
            "name": "First buyers",
            "definition": definition("order.created", [add_tags("A")]),
            "max_runs_per_customer": 1,
        },
        format="json",
    )
    assert created.status_code == 201
    pk = created.json()["id"]
    assert (created.json()["status"], created.json()["version"], created.json()["trigger"]) == (
        "draft",
        None,
        "order.created",
    )

    activated = api.post(f"/api/v1/workflows/{pk}/activate/")
    assert (activated.status_code, activated.json()["status"], activated.json()["version"]) == (200, "active", 1)

    edited = api.patch(
        f"/api/v1/workflows/{pk}/", {"definition": definition("order.created", [add_tags("B")])}, format="json"
    )
    assert (edited.json()["status"], edited.json()["has_unpublished_changes"], edited.json()["version"]) == (
        "active",
        True,
        1,
    )
    api.post(f"/api/v1/workflows/{pk}/activate/")
    versions = api.get(f"/api/v1/workflows/{pk}/versions/").json()
    assert [(v["number"], v["definition"]["steps"][0]["params"]["tags"], v["waiting_runs"]) for v in versions] == [
        (2, ["B"], 0),
        (1, ["A"], 0),
    ]

    assert api.delete(f"/api/v1/workflows/{pk}/").status_code == 400  # active: pause first
    paused = api.post(f"/api/v1/workflows/{pk}/pause/")
    assert paused.json()["status"] == "paused"
    assert api.delete(f"/api/v1/workflows/{pk}/").status_code == 204
    assert Workflow.objects.count() == 0


def test_validate_endpoint_saves_nothing(api):
    response = api.post(
        "/api/v1/workflows/validate/",
        {"definition": definition("order.created", [{"wait": {"weeks": 1}}])},
        format="json",
    )

    assert response.json() == {
        "valid": False,
        "errors": [
            {"path": "steps[0].wait.weeks", "message": "Unknown key."},
            {"path": "steps[0].wait", "message": "Give exactly one of minutes, hours or days."},
        ],
    }


def test_test_action_returns_the_trace(api):
    customer = CustomerFactory()
    order = make_order(customer, total="30.00", currency="EUR")
    workflow = services.workflow_create(
        name="x", definition=definition("order.created", [add_tags("{{ order.currency }}", step_id="a")])
    )

    response = api.post(
        f"/api/v1/workflows/{workflow.pk}/test/", {"customer": customer.pk, "subject": order.pk}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["actions"] == ["Add customer tags (tags: EUR)"]


def test_runs_are_listed_with_their_steps_filtered_and_replayable(api, fire, django_assert_num_queries):
    workflow = active_workflow("w", "customer.activated", [add_tags("x")])
    other = active_workflow("other", "customer.activated", [add_tags("y")])
    customers = [CustomerFactory() for _ in range(3)]
    with time_machine.travel(datetime(2026, 6, 1, tzinfo=UTC), tick=False):
        for customer in customers:
            fire(customer_services.customer_activate, customer=customer)

    with django_assert_num_queries(3):  # count, runs with joins, steps
        response = api.get(f"/api/v1/workflow-runs/?workflow={workflow.pk}&status=succeeded&date=2026-06-01")
    body = response.json()
    assert body["count"] == 3
    assert {run["workflow"] for run in body["results"]} == {workflow.pk}
    assert [step["path"] for step in body["results"][0]["steps"]] == ["trigger", "steps[0]"]

    by_customer = api.get(f"/api/v1/workflow-runs/?customer={customers[0].pk}").json()
    assert sorted(run["workflow"] for run in by_customer["results"]) == sorted([workflow.pk, other.pk])
    assert api.get("/api/v1/workflow-runs/?date=2026-06-02").json()["count"] == 0

    run = WorkflowRun.objects.filter(workflow=workflow).first()
    refused = api.post(f"/api/v1/workflow-runs/{run.pk}/replay/")
    assert refused.status_code == 400
    WorkflowRun.objects.filter(pk=run.pk).update(status="dead", attempts=5)
    replayed = api.post(f"/api/v1/workflow-runs/{run.pk}/replay/")
    assert (replayed.status_code, replayed.json()["status"], replayed.json()["attempts"]) == (200, "pending", 0)


def test_workflow_fields_lists_catalog_triggers_and_actions(api):
    body = api.get("/api/v1/workflow-fields/").json()

    assert "order.total" in {field["name"] for field in body["fields"]}
    assert {"order.created", "customer.tag_added", "event.custom", "customer.bulk_activity"} <= {
        trigger["name"] for trigger in body["triggers"]
    }
    actions = {action["name"]: action for action in body["actions"]}
    assert {
        "customer.add_tags",
        "customer.remove_tags",
        "customer.update_attribute",
        "notify.email",
        "notify.webhook",
    } <= set(actions)
    assert actions["customer.add_tags"]["params"][0] == {
        "name": "tags",
        "type": "text_list",
        "label": "Tags",
        "required": True,
        "help": "Dynamic parameters allowed, e.g. {{ order.currency }} buyer; a list (product tags) adds each.",
        "choices": [],
        "dynamic": True,
    }


def test_the_api_needs_authentication():
    assert APIClient().get("/api/v1/workflows/").status_code in (401, 403)


def test_a_create_repeated_with_the_same_idempotency_key_makes_one_workflow(api):
    body = {"name": "Once", "definition": definition("order.created", [add_tags("A")])}

    first = api.post("/api/v1/workflows/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post("/api/v1/workflows/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Workflow.objects.count() == 1
