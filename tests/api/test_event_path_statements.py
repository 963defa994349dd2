"""
The single-event POST's statements, pinned (issue 12): one transaction, one commit, no savepoint; the outbox
row's consumers decided inside it (a receipt for the idle ones, the listening one's task queued in the same
commit with the ORM broker), and an event nobody wants written processed at once.
"""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ
from rest_framework.test import APIClient

from apps.customers.models import CustomerEvent, DomainEvent, DomainEventReceipt
from apps.platform import authentication
from apps.platform.services import api_token_create
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bearer_client(monkeypatch):
    # The token is read once and then served from the per-process auth cache: a still clock keeps it fresh
    # however slowly a loaded run reaches the counted request.
    monkeypatch.setattr(authentication, "_clock", lambda: 0.0)
    user = UserFactory(username="integrator", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    _, raw = api_token_create(user=user, name="t", scopes=["ingest"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _tagging_workflow() -> None:
    """Active: custom event named bench → add tag Bench."""
    where = {"field": "event.name", "op": "eq", "value": "bench"}
    active_workflow("Bench", "event.custom", [add_tags("Bench", step_id="tag")], where=where)


def _post(client, external_id: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/events/", {"customer_external_id": external_id, "name": "bench"}, format="json")
    return response.status_code, [query["sql"] for query in captured.captured_queries]


def test_a_single_event_post_is_nine_statements_in_one_commit_and_queues_its_task_in_it(bearer_client):
    _tagging_workflow()
    CustomerFactory(external_id="c0")
    customer = CustomerFactory(external_id="c1")
    bearer_client.post("/api/v1/events/", {"customer_external_id": "c0", "name": "bench"}, format="json")
    queued_before = OrmQ.objects.count()

    status, statements = _post(bearer_client, "c1")

    assert status == 201
    # the customer, BEGIN, the custom event, two "does anyone consume it" checks (earning rule, workflow),
    # the outbox row, loyalty's receipt, the queue row, COMMIT (was 23 statements with 3 savepoints and 3
    # commits, then 12 with the token and the user's and group's permissions read on every request: they
    # are cached per process since the first POST, apps/platform/authentication.py). On PostgreSQL the
    # engine's events go to its drain: no queue row in the transaction, and after the COMMIT one read finds
    # the drain the first POST sent still queued (tests/automations/test_engine_drains.py)
    drains = connection.vendor == "postgresql"
    assert len(statements) == 9, "\n".join(statements)
    assert ("outboxdrain" in statements[-1]) is drains
    assert not [s for s in statements if "platform_apitoken" in s or "auth_permission" in s]
    assert [s for s in statements if s.startswith("COMMIT")] == ["COMMIT"]
    assert not [s for s in statements if "SAVEPOINT" in s]
    event = DomainEvent.objects.get(customer=customer)
    assert (event.name, event.status) == ("event.custom", "pending")
    assert list(DomainEventReceipt.objects.filter(event=event).values_list("consumer", flat=True)) == ["loyalty"]
    assert OrmQ.objects.count() == queued_before + (0 if drains else 1)
    assert CustomerEvent.objects.filter(customer=customer, name="bench").count() == 1


def test_an_event_no_consumer_wants_is_written_processed_with_no_task_and_no_receipt(bearer_client):
    CustomerFactory(external_id="c0")
    customer = CustomerFactory(external_id="c1")
    bearer_client.post("/api/v1/events/", {"customer_external_id": "c0", "name": "bench"}, format="json")

    status, statements = _post(bearer_client, "c1")

    assert status == 201
    # as above, with the state tags' check instead of the receipt and the queue row
    assert len(statements) == 8, "\n".join(statements)
    assert [s for s in statements if s.startswith("COMMIT")] == ["COMMIT"]
    event = DomainEvent.objects.get(customer=customer)
    assert event.status == "processed" and event.processed_at is not None
    assert DomainEventReceipt.objects.filter(event=event).count() == 0
    assert OrmQ.objects.count() == 0


def test_an_unknown_customer_is_a_400_that_writes_nothing(bearer_client):
    _tagging_workflow()

    response = bearer_client.post("/api/v1/events/", {"customer_external_id": "nobody", "name": "bench"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "customer_external_id"
    assert (CustomerEvent.objects.count(), DomainEvent.objects.count(), OrmQ.objects.count()) == (0, 0, 0)
