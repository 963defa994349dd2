import pytest

from apps.automations import engine
from apps.automations.models import ActionEffect, WorkflowRun
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent
from apps.tagging.models import CustomerTag, TagAudit
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory
from tests.threads import raised, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_workers_processing_the_same_event_at_once_make_one_run_and_one_tag(monkeypatch):
    from loyalty_site.lib import tasks

    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda *args, **kwargs: None)
    active_workflow("once", "customer.activated", [add_tags("Once"), add_tags("Twice?")])
    customer = CustomerFactory()
    customer_services.customer_activate(customer=customer)
    event = DomainEvent.objects.get(name="customer.activated")
    outcomes = run_together(*[lambda: engine.domain_event_process(event_id=event.pk)] * 4)

    assert raised(outcomes) == []
    assert list(WorkflowRun.objects.values_list("status", "attempts")) == [("succeeded", 1)]
    assert sorted(CustomerTag.objects.filter(customer=customer).values_list("tag__name", flat=True)) == [
        "Once",
        "Twice?",
    ]
    assert TagAudit.objects.filter(customer=customer).count() == 2
    assert ActionEffect.objects.count() == 2
    event.refresh_from_db()
    assert event.status == "processed"
