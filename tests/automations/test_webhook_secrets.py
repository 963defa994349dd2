"""
Webhook signing secrets: encrypted at rest, write-only (never in an API answer, a page, a run step or a
trace), kept when a redacted definition is saved back, and still used to sign deliveries.
"""

import base64
import json

import pytest
from django.apps import apps as django_apps
from rest_framework.test import APIClient

from apps.automations import services
from apps.automations.models import Workflow, WorkflowRun, WorkflowRunStep, WorkflowVersion
from apps.automations.secret_params import REDACTED
from apps.automations.webhooks import signature_verify
from apps.customers import services as customer_services
from loyalty_site.lib.crypto import is_encrypted, secret_decrypt
from tests.automations.test_engine_support import definition
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + base64.b64encode(b"a very private signing key 32by").decode()
SECRET_BODY = SECRET.removeprefix("whsec_")


def webhook_definition(url: str, secret: str = SECRET, step_id: str = "h") -> dict:
    return definition(
        "customer.activated",
        [{"id": step_id, "action": "notify.webhook", "params": {"url": url, "secret": secret, "data": {"a": 1}}}],
    )


def stored_secret(workflow: Workflow) -> str:
    return Workflow.objects.get(pk=workflow.pk).definition["steps"][0]["params"]["secret"]


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="marketer", is_staff=True, is_superuser=True))
    return client


def assert_no_secret(text: str) -> None:
    assert SECRET_BODY not in text


def test_api_stores_the_secret_encrypted_and_never_answers_it(api, receiver):
    created = api.post(
        "/api/v1/workflows/", {"name": "hook", "definition": webhook_definition(receiver.url)}, format="json"
    )

    assert created.status_code == 201
    assert created.json()["definition"]["steps"][0]["params"]["secret"] == REDACTED
    assert_no_secret(created.content.decode())
    workflow = Workflow.objects.get(pk=created.json()["id"])
    stored = stored_secret(workflow)
    assert is_encrypted(stored)
    assert_no_secret(json.dumps(workflow.definition))
    assert secret_decrypt(stored) == SECRET

    api.post(f"/api/v1/workflows/{workflow.pk}/activate/")
    for url in (
        "/api/v1/workflows/",
        f"/api/v1/workflows/{workflow.pk}/",
        f"/api/v1/workflows/{workflow.pk}/versions/",
    ):
        response = api.get(url)
        assert response.status_code == 200
        assert_no_secret(response.content.decode())
        assert REDACTED in response.content.decode()
    assert_no_secret(json.dumps(WorkflowVersion.objects.get(workflow=workflow).definition))


def test_a_redacted_definition_saved_back_keeps_the_stored_secret_and_is_no_edit(api, receiver):
    workflow = services.workflow_activate(
        workflow=services.workflow_create(name="hook", definition=webhook_definition(receiver.url))
    )
    before = stored_secret(workflow)
    shown = api.get(f"/api/v1/workflows/{workflow.pk}/").json()["definition"]

    saved = api.patch(f"/api/v1/workflows/{workflow.pk}/", {"definition": shown}, format="json")

    assert saved.status_code == 200
    assert saved.json()["has_unpublished_changes"] is False
    assert stored_secret(workflow) == before
    # The same plaintext typed again is no edit either; a new one is.
    services.workflow_update(workflow=workflow, definition=webhook_definition(receiver.url))
    assert stored_secret(workflow) == before
    other = "whsec_" + base64.b64encode(b"another key").decode()
    services.workflow_update(workflow=workflow, definition=webhook_definition(receiver.url, secret=other))
    assert secret_decrypt(stored_secret(workflow)) == other
    assert Workflow.objects.get(pk=workflow.pk).has_unpublished_changes is True


def test_redacted_secret_without_a_stored_one_and_malformed_secret_are_400_with_paths(api, receiver):
    for secret, message in [
        (REDACTED, "Type the secret: there is no stored one to keep."),
        ("whsec_not base64!", "The signing secret is not valid base64."),
        ("sk_live_abc", 'The signing secret must look like "whsec_<base64>".'),
    ]:
        response = api.post(
            "/api/v1/workflows/",
            {"name": "hook", "definition": webhook_definition(receiver.url, secret=secret)},
            format="json",
        )
        assert response.status_code == 400
        assert [(e["path"], e["message"]) for e in response.json()["errors"]] == [("steps[0].params.secret", message)]
    assert Workflow.objects.count() == 0


def test_deliveries_are_signed_with_the_secret_while_steps_and_runs_show_it_redacted(api, receiver, fire):
    workflow = services.workflow_activate(
        workflow=services.workflow_create(name="hook", definition=webhook_definition(receiver.url))
    )

    fire(customer_services.customer_activate, customer=CustomerFactory(email="ann@example.com"))

    [request] = receiver.requests
    assert signature_verify(secret=SECRET, headers=request["headers"], body=request["body"])
    run = WorkflowRun.objects.get(workflow=workflow)
    step = WorkflowRunStep.objects.get(run=run, step_id="h")
    assert step.status == "succeeded"
    assert step.inputs["params"]["secret"] == REDACTED
    assert_no_secret(json.dumps(step.inputs) + json.dumps(step.outcome))
    response = api.get(f"/api/v1/workflow-runs/{run.pk}/")
    assert response.status_code == 200
    assert_no_secret(response.content.decode())


def test_test_run_trace_builder_and_admin_pages_never_show_the_secret(api, client, receiver):
    user = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(user)
    workflow = services.workflow_activate(
        workflow=services.workflow_create(name="hook", definition=webhook_definition(receiver.url))
    )
    customer = CustomerFactory()

    trace = api.post(f"/api/v1/workflows/{workflow.pk}/test/", {"customer": customer.pk}, format="json")
    unsaved = api.post(
        f"/api/v1/workflows/{workflow.pk}/test/",
        {"customer": customer.pk, "definition": webhook_definition(receiver.url)},
        format="json",
    )
    pages = [
        client.get(f"/admin/automations/builder/{workflow.pk}/"),
        client.get(f"/admin/automations/builder/{workflow.pk}/versions/1/"),
        client.get(f"/admin/automations/workflow/{workflow.pk}/change/"),
        client.get(f"/admin/automations/workflowversion/{workflow.current_version_id}/change/"),
    ]

    assert (trace.status_code, unsaved.status_code) == (200, 200)
    assert_no_secret(trace.content.decode() + unsaved.content.decode())
    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    for page in pages:
        assert_no_secret(page.content.decode())
        assert "redacted" in page.content.decode()


def test_the_admin_form_shows_the_secret_redacted_and_saving_it_keeps_it(rf, receiver):
    from django.contrib.admin.sites import site

    from apps.automations.admin import WorkflowAdminForm

    workflow = services.workflow_create(name="hook", definition=webhook_definition(receiver.url))
    before = stored_secret(workflow)
    shown = WorkflowAdminForm(instance=workflow).initial["definition"]
    assert shown["steps"][0]["params"]["secret"] == REDACTED
    form = WorkflowAdminForm(
        data={"name": "hook", "description": "", "definition": json.dumps(shown)},
        instance=Workflow.objects.get(pk=workflow.pk),
    )
    assert form.is_valid(), form.errors
    request = rf.post("/")
    request.user = UserFactory(username="boss", is_staff=True, is_superuser=True)

    site._registry[Workflow].save_model(request, form.instance, form, change=True)

    assert stored_secret(workflow) == before


def test_the_data_migration_encrypts_plaintext_secrets_and_redacts_recorded_steps(receiver):
    migration = __import__("apps.automations.migrations.0002_encrypt_webhook_secrets", fromlist=["encrypt_secrets"])
    workflow = services.workflow_activate(
        workflow=services.workflow_create(name="hook", definition=webhook_definition(receiver.url))
    )
    plain = webhook_definition(receiver.url)
    Workflow.objects.filter(pk=workflow.pk).update(definition=plain)
    WorkflowVersion.objects.filter(workflow=workflow).update(definition=plain)
    run = WorkflowRun.objects.create(workflow=workflow, version=workflow.current_version, customer=CustomerFactory())
    step = WorkflowRunStep.objects.create(
        run=run,
        path="steps[0]",
        kind="action",
        inputs={"action": "notify.webhook", "params": plain["steps"][0]["params"]},
    )

    migration.encrypt_secrets(django_apps, None)

    workflow.refresh_from_db()
    version = WorkflowVersion.objects.get(workflow=workflow)
    assert secret_decrypt(stored_secret(workflow)) == SECRET
    assert version.definition == workflow.definition  # one plaintext, one ciphertext: still unchanged
    step.refresh_from_db()
    assert step.inputs["params"] == {"url": receiver.url, "secret": REDACTED, "data": {"a": 1}}
