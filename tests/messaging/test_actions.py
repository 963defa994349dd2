"""The notify.* actions: one delivery per run step, through the effect ledger, visible on the run."""

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from apps.automations import engine, services
from apps.automations.models import WorkflowRun
from apps.customers import services as customer_services
from apps.customers.messaging.models import Delivery
from tests.automations.test_engine_support import active_workflow, definition
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

STEPS = [
    {"id": "e", "action": "notify.email", "params": {"subject": "Hi {{ customer.first_name }}", "body": "Welcome"}},
    {"id": "m", "action": "notify.in_app", "params": {"subject": "Welcome", "body": "Your first reward awaits"}},
    {"id": "t", "action": "notify.sms", "params": {"body": "Welcome!", "purpose": "transactional"}},
]


def test_a_run_sends_one_delivery_per_notify_step(fire, settings, tmp_path):
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    active_workflow("welcome", "customer.activated", STEPS)
    customer = CustomerFactory(first_name="Ana", phone="+15551234567")

    fire(customer_services.customer_activate, customer=customer)

    run = WorkflowRun.objects.get()
    assert run.status == "succeeded"
    rows = {row.channel: row for row in Delivery.objects.order_by("pk")}
    assert sorted(rows) == ["email", "in_app", "sms"]
    assert {row.cause for row in rows.values()} == {f"workflow_run:{run.pk}"}
    assert {row.status for row in rows.values()} == {"sent"}
    assert rows["email"].subject == "Hi Ana"
    assert rows["sms"].purpose == "transactional"
    assert mail.outbox[0].subject == "Hi Ana"
    assert len((tmp_path / "sms.jsonl").read_text().splitlines()) == 1
    step = run.steps.get(path="steps[0]")
    assert step.outcome == {
        "delivery": rows["email"].pk,
        "channel": "email",
        "status": "sent",
        "to": customer.email,
        "subject": "Hi Ana",
    }


def test_the_same_run_step_executed_twice_delivers_once(fire):
    active_workflow("once", "customer.activated", STEPS[:2])
    customer = CustomerFactory()
    fire(customer_services.customer_activate, customer=customer)
    run = WorkflowRun.objects.get()

    # a worker died after the effects but before the run was marked done: the task comes back
    WorkflowRun.objects.filter(pk=run.pk).update(status="pending")
    engine.run_execute(run_id=run.pk)
    # and a worker died after sending but before the effect ledger said so
    run.effects.update(status="started")
    WorkflowRun.objects.filter(pk=run.pk).update(status="pending", resume_step="")
    engine.run_execute(run_id=run.pk)

    assert len(mail.outbox) == 1
    assert Delivery.objects.count() == 2
    assert WorkflowRun.objects.get().status == "succeeded"


def test_a_customer_without_consent_gets_a_suppressed_row_and_the_run_succeeds(fire):
    active_workflow("promo", "customer.activated", STEPS[:1])
    customer = CustomerFactory(accepts_marketing=False)

    fire(customer_services.customer_activate, customer=customer)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.reason) == ("suppressed", "no_consent")
    assert mail.outbox == []
    run = WorkflowRun.objects.get()
    assert run.status == "succeeded"
    assert run.steps.get(path="steps[0]").outcome["reason"] == "no_consent"


def test_a_permanent_provider_failure_fails_the_step_with_the_reason(fire, sms_api):
    sms_api.answers = [(400, {"code": 21211, "message": "Invalid To"})]
    active_workflow("sms", "customer.activated", [STEPS[2]])
    customer = CustomerFactory(phone="+15551234567")

    fire(customer_services.customer_activate, customer=customer)

    run = WorkflowRun.objects.get()
    assert run.status == "failed"
    assert "invalid_address" in run.steps.get(path="steps[0]").error
    assert Delivery.objects.get().status == "failed"


@pytest.mark.parametrize(
    ("step", "path"),
    [
        ({"action": "notify.email", "params": {"subject": "No body"}}, "steps[0].params.body"),
        ({"action": "notify.in_app", "params": {"body": "No title"}}, "steps[0].params.subject"),
        ({"action": "notify.sms", "params": {}}, "steps[0].params.body"),
        ({"action": "notify.sms", "params": {"body": "x", "purpose": "spam"}}, "steps[0].params.purpose"),
    ],
)
def test_a_notify_step_without_content_is_refused_at_save_with_its_path(step, path):
    with pytest.raises(ValidationError) as refused:
        services.workflow_create(name="bad", definition=definition("customer.activated", [step]))

    assert list(refused.value.message_dict) == [path]


# --- Templates (apps/customers/messaging/templating) -----------------------------------------------------


def test_a_notify_step_with_a_template_sends_its_published_version_in_the_customers_language(fire):
    from apps.customers.messaging.templating import services as templates

    template = templates.template_create(
        key="welcome",
        name="Welcome",
        channel="email",
        purpose="marketing",
        subject="Hi {{ customer.first_name }}",
        body="Welcome to the club.",
    )
    templates.template_publish(template=template)
    active_workflow("tpl", "customer.activated", [{"action": "notify.email", "params": {"template": "welcome"}}])
    customer = CustomerFactory(first_name="Ana")

    fire(customer_services.customer_activate, customer=customer)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.subject) == ("sent", "Hi Ana")
    assert (delivery.template_key, delivery.template_version, delivery.locale) == ("welcome", 1, "en")
    assert "Welcome to the club." in mail.outbox[0].body
    assert "Welcome to the club." in mail.outbox[0].alternatives[0][0]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"action": "notify.email", "params": {"template": "nope"}}, 'No message template "nope".'),
        ({"action": "notify.sms", "params": {"template": "welcome"}}, 'Template "welcome" is for email, not sms.'),
    ],
)
def test_an_unknown_or_other_channel_template_is_refused_at_save(step, message):
    from apps.customers.messaging.templating import services as templates

    templates.template_create(key="welcome", name="W", channel="email", purpose="marketing", subject="s", body="b")
    with pytest.raises(ValidationError) as refused:
        services.workflow_create(name="bad", definition=definition("customer.activated", [step]))

    assert refused.value.message_dict == {"steps[0].params.template": [message]}
