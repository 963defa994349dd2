import json

import pytest
from django.urls import reverse

from apps.automations.models import Workflow, WorkflowRun
from apps.customers import services as customer_services
from tests.automations.test_engine_support import active_workflow, add_tags, definition
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _form(**overrides):
    data = {
        "name": "Admin made",
        "description": "",
        "definition": json.dumps(definition("order.created", [add_tags("A")])),
        "active_from_0": "",
        "active_from_1": "",
        "active_until_0": "",
        "active_until_1": "",
        "max_runs_per_customer": "",
        "max_runs_period_days": "",
        "min_interval_minutes": "",
        "schedule_cron": "",
        "audience": "null",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_the_admin_form_refuses_an_invalid_definition_with_paths_and_saves_nothing(admin_client):
    bad = definition("order.created", [{"action": "customer.add_tags", "params": {}}])

    response = admin_client.post(reverse("admin:automations_workflow_add"), _form(definition=json.dumps(bad)))

    assert response.status_code == 200
    assert "steps[0].params.tags: This parameter is required." in response.content.decode()
    assert Workflow.objects.count() == 0


def test_the_admin_form_creates_a_draft_through_the_service(admin_client, admin_user):
    response = admin_client.post(reverse("admin:automations_workflow_add"), _form())

    assert response.status_code == 302
    workflow = Workflow.objects.get()
    assert (workflow.name, workflow.status, workflow.trigger, workflow.created_by) == (
        "Admin made",
        "draft",
        "order.created",
        admin_user,
    )


def test_changelists_and_run_page_load_and_replay_action(admin_client, fire, django_assert_max_num_queries):
    workflow = active_workflow("w", "customer.activated", [add_tags("x")])
    for _ in range(3):
        fire(customer_services.customer_activate, customer=CustomerFactory())
    run = WorkflowRun.objects.first()
    WorkflowRun.objects.filter(pk=run.pk).update(status="dead")

    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("admin:automations_workflow_changelist")).status_code == 200
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("admin:automations_workflowrun_changelist")).status_code == 200
    page = admin_client.get(reverse("admin:automations_workflowrun_change", args=[run.pk]))
    assert page.status_code == 200
    assert "steps[0]" in page.content.decode()
    assert admin_client.get(reverse("admin:automations_workflow_change", args=[workflow.pk])).status_code == 200

    response = admin_client.post(
        reverse("admin:automations_workflowrun_changelist"),
        {"action": "replay_selected", "_selected_action": [r.pk for r in WorkflowRun.objects.all()]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["1 run(s) queued again.", "2 skipped: only dead or failed runs replay."]
    run.refresh_from_db()
    assert run.status == "pending"


def test_the_admin_form_refuses_a_definition_nested_thousands_deep_without_parsing_it(admin_client):
    where = '{"not": ' * 100_000 + '{"field": "customer.country", "op": "eq", "value": "DE"}' + "}" * 100_000
    deep = '{"schema": 1, "trigger": {"event": "customer.registered", "where": ' + where + '}, "steps": []}'

    response = admin_client.post(reverse("admin:automations_workflow_add"), _form(definition=deep))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["definition"] == [
        "The JSON is nested deeper than 100 levels (at trigger.where" + ".not" * 98 + ")."
    ]
    assert Workflow.objects.count() == 0
