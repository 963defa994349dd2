"""
The event batch endpoint (/api/v1/batch/events/) is set-based: the customers read in one query, the events,
their outbox rows and their queue rows inserted once each, one commit — with the same answers, per item, as
the single-event endpoint.
"""

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext, override_settings
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task
from rest_framework.test import APIClient

from apps.customers import signals
from apps.customers.models import Customer, CustomerEvent, DomainEvent, DomainEventReceipt
from apps.platform.services import api_token_create
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory, UserFactory
from tests.threads import run_together

URL = "/api/v1/batch/events/"


def _workflow_listening() -> None:
    """Active: custom event named bench → add tag Bench."""
    where = {"field": "event.name", "op": "eq", "value": "bench"}
    active_workflow("Bench", "event.custom", [add_tags("Bench", step_id="tag")], where=where)


def _items(count: int, *, prefix: str = "e", customer: str = "c1") -> list[dict]:
    return [{"external_id": f"{prefix}-{i}", "customer_external_id": customer, "name": "bench"} for i in range(count)]


@pytest.mark.django_db
def test_good_items_are_written_and_each_bad_one_is_reported_with_its_path_as_the_single_endpoint_would(
    api, integrator
):
    first = CustomerFactory(external_id="c1")
    second = CustomerFactory(external_id="c2")
    api.post("/api/v1/events/", {"external_id": "e-old", "customer_external_id": "c1", "name": "x"}, format="json")
    stored = CustomerEvent.objects.get(external_id="e-old")
    items = [
        {"external_id": "e-1", "customer_external_id": "c1", "name": " review_posted ", "properties": {"rating": 5}},
        {"external_id": "e-old", "customer_external_id": "c2", "name": "x"},
        {"external_id": "e-2", "customer_external_id": "nobody", "name": "x"},
        {"external_id": "e-3", "customer_id": 999_999, "name": "x"},
        {"external_id": "e-4", "customer_external_id": "c1"},
        {"external_id": "e-5", "customer_id": second.pk, "name": "like", "occurred_at": "2026-03-03T08:00:00Z"},
        {"external_id": "e-1", "customer_external_id": "c2", "name": "again"},
        {"customer": {"external_id": "c-new", "email": "new@example.com"}, "name": "signup"},
        {"customer_external_id": "c1", "name": "x", "properties": [1]},
        "not an object",
    ]

    response = api.post(URL, {"items": items}, format="json")

    assert response.status_code == 200
    data = response.json()
    assert (data["created"], data["existing"], data["failed"]) == (3, 2, 5)
    assert [(r["index"], r["status"], r["external_id"]) for r in data["results"]] == [
        (0, "created", "e-1"),
        (1, "existing", "e-old"),
        (2, "error", "e-2"),
        (3, "error", "e-3"),
        (4, "error", "e-4"),
        (5, "created", "e-5"),
        (6, "existing", "e-1"),
        (7, "created", None),
        (8, "error", None),
        (9, "error", None),
    ]
    errors = {r["index"]: [(e["path"], e["message"]) for e in r["errors"]] for r in data["results"] if r["errors"]}
    assert errors == {
        2: [("items[2].customer_external_id", "No customer with external id 'nobody'.")],
        3: [("items[3].customer_id", "No customer with id 999999.")],
        4: [("items[4].name", "This field is required.")],
        8: [("items[8].properties", "Must be a JSON object.")],
        9: [("items[9]", "Invalid data. Expected a dictionary, but got str.")],
    }
    created = CustomerEvent.objects.get(external_id="e-1")
    assert data["results"][0]["id"] == data["results"][6]["id"] == created.pk
    assert data["results"][1]["id"] == stored.pk
    assert (created.customer, created.name, created.properties) == (first, "review_posted", {"rating": 5})
    assert CustomerEvent.objects.get(external_id="e-5").occurred_at.isoformat() == "2026-03-03T08:00:00+00:00"
    signup = CustomerEvent.objects.get(pk=data["results"][7]["id"])
    assert (signup.customer.external_id, signup.customer.email, signup.name) == ("c-new", "new@example.com", "signup")
    assert CustomerEvent.objects.count() == 4
    outbox = DomainEvent.objects.filter(name="event.custom").order_by("pk")
    cause = f"api:user:{integrator.pk}"
    assert [(e.customer_id, e.payload, e.cause) for e in outbox][1:] == [
        (first.pk, {"custom_event_id": created.pk, "event_name": "review_posted"}, cause),
        (second.pk, {"custom_event_id": data["results"][5]["id"], "event_name": "like"}, cause),
        (signup.customer_id, {"custom_event_id": signup.pk, "event_name": "signup"}, cause),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_one_commit_and_the_same_statements_for_one_item_or_a_hundred(api):
    _workflow_listening()
    CustomerFactory(external_id="c1")
    api.post(URL, {"items": _items(1, prefix="warm")}, format="json")
    counts = {}
    for size in (1, 100):
        with CaptureQueriesContext(connection) as captured:
            response = api.post(URL, {"items": _items(size, prefix=f"s{size}")}, format="json")
        assert response.json()["created"] == size
        statements = [q["sql"] for q in captured.captured_queries]
        assert [s for s in statements if s.startswith("COMMIT")] == ["COMMIT"]
        assert not [s for s in statements if "SAVEPOINT" in s]
        counts[size] = len(statements)

    # customers, stored external ids, BEGIN, events, "workflow listens", "earning rule wants" (once per
    # event name), outbox rows, loyalty's receipts, queue rows, COMMIT (100 items one by one: 12 each); on
    # PostgreSQL no queue rows but, after the COMMIT, one read finding the engine's drain still queued
    # (tests/automations/test_engine_drains.py)
    assert counts == {1: 10, 100: 10}


@pytest.mark.django_db
def test_listened_events_are_pending_with_one_queue_row_each_and_the_idle_consumers_receipt(api, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 1  # one task per event (SQLite, or batches off; else the engine's drain)
    _workflow_listening()
    CustomerFactory(external_id="c1")

    response = api.post(URL, {"items": _items(3)}, format="json")

    events = list(DomainEvent.objects.order_by("pk"))
    assert [r["status"] for r in response.json()["results"]] == ["created"] * 3
    assert [e.status for e in events] == ["pending"] * 3
    assert sorted(DomainEventReceipt.objects.values_list("event_id", "consumer")) == [(e.pk, "loyalty") for e in events]
    tasks = [SignedPackage.loads(row.payload) for row in OrmQ.objects.order_by("pk")]
    assert [(t["func"], t["args"]) for t in tasks] == [
        ("apps.automations.tasks.process_domain_event", (e.pk,)) for e in events
    ]


@pytest.mark.django_db
def test_events_no_consumer_wants_are_written_processed_with_no_task_and_no_receipt(api):
    CustomerFactory(external_id="c1")

    api.post(URL, {"items": _items(2)}, format="json")

    assert list(DomainEvent.objects.values_list("status", flat=True)) == ["processed", "processed"]
    assert DomainEvent.objects.filter(processed_at__isnull=True).count() == 0
    assert (DomainEventReceipt.objects.count(), OrmQ.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_the_queue_rows_are_the_packages_async_task_would_have_queued(api, settings):
    settings.AUTOMATIONS_EVENT_BATCH = 1  # one task per event (SQLite, or batches off; else the engine's drain)
    _workflow_listening()
    CustomerFactory(external_id="c1")
    api.post(URL, {"items": _items(1)}, format="json")
    batch_row = OrmQ.objects.get()
    async_task("apps.automations.tasks.process_domain_event", 1)
    single_row = OrmQ.objects.exclude(pk=batch_row.pk).get()

    batched, single = SignedPackage.loads(batch_row.payload), SignedPackage.loads(single_row.payload)

    assert sorted(batched) == sorted(single)
    assert {k: v for k, v in batched.items() if k not in ("id", "name", "args", "started")} == {
        k: v for k, v in single.items() if k not in ("id", "name", "args", "started")
    }
    assert (batch_row.key, batch_row.lock is not None) == (single_row.key, True)


@pytest.mark.django_db(transaction=True)
def test_the_domain_signal_is_sent_once_per_event_after_the_commit(api):
    CustomerFactory(external_id="c1")
    heard: list[tuple[int, bool]] = []

    def receiver(sender, event, customer, custom_event, **kwargs):
        heard.append((custom_event.pk, connections["default"].in_atomic_block))

    signals.custom_event_received.connect(receiver)
    try:
        api.post(URL, {"items": _items(3)}, format="json")
    finally:
        signals.custom_event_received.disconnect(receiver)

    assert heard == [(pk, False) for pk in CustomerEvent.objects.order_by("pk").values_list("pk", flat=True)]


@pytest.mark.django_db
def test_without_the_permission_the_batch_is_403_and_writes_nothing():
    CustomerFactory(external_id="c1")
    user = UserFactory(username="reader", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="analyst"))
    client = APIClient()
    client.force_authenticate(user)

    response = client.post(URL, {"items": _items(2)}, format="json")

    assert response.status_code == 403
    assert response.json()["message"] == "Missing permission: customers.add_customerevent."
    assert (CustomerEvent.objects.count(), DomainEvent.objects.count(), OrmQ.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_a_token_without_the_ingest_scope_is_403_and_writes_nothing(integrator):
    CustomerFactory(external_id="c1")
    _, raw = api_token_create(user=integrator, name="r", scopes=["reports"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.post(URL, {"items": _items(2)}, format="json")

    assert response.status_code == 403
    assert response.json()["error"] == "missing_scope"
    assert (CustomerEvent.objects.count(), DomainEvent.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_more_than_1000_items_are_refused_and_nothing_is_written(api):
    CustomerFactory(external_id="c1")

    response = api.post(URL, {"items": _items(1001)}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "items", "message": "At most 1000 items per request.", "code": "invalid"}
    ]
    assert CustomerEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_body_over_the_size_limit_is_a_413_before_it_is_parsed_and_nothing_is_written(api):
    CustomerFactory(external_id="c1")

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000):
        response = api.post(URL, {"items": _items(40)}, format="json")

    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert CustomerEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_batches_with_the_same_new_external_ids_store_each_once(integrator):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    _workflow_listening()
    Customer.objects.create(external_id="c1")
    items = _items(50)

    def post():
        client = APIClient()
        client.force_authenticate(integrator)
        return client.post(URL, {"items": items}, format="json")

    responses = run_together(post, post)

    stored = dict(CustomerEvent.objects.values_list("external_id", "pk"))
    assert len(stored) == 50 and CustomerEvent.objects.count() == 50
    assert DomainEvent.objects.count() == 50
    assert OrmQ.objects.count() == 1  # the engine's drain, sent after the first commit (was a task per event)
    for response in responses:
        assert response.status_code == 200
        assert [(r["external_id"], r["id"]) for r in response.json()["results"]] == [
            (f"e-{i}", stored[f"e-{i}"]) for i in range(50)
        ]
    assert sorted(r.json()["created"] for r in responses) == [0, 50]


@pytest.mark.django_db
def test_loyalty_is_asked_once_per_event_name_and_queued_only_for_the_events_an_earning_rule_wants(api, settings):
    from decimal import Decimal

    settings.LOYALTY_EVENT_BATCH = 1  # one task per event (SQLite, or batches off; else loyalty's drain)

    from apps.loyalty.models import EarningRule
    from tests.loyalty.conftest import program_make

    EarningRule.objects.create(
        program=program_make(), name="Reviews", kind="fixed_event", event_name="review_posted", points=Decimal("5")
    )
    CustomerFactory(external_id="c1")
    items = [{"customer_external_id": "c1", "name": name} for name in ("review_posted", "like", "review_posted")]

    with CaptureQueriesContext(connection) as captured:
        api.post(URL, {"items": items}, format="json")

    rule_lookups = [q["sql"] for q in captured.captured_queries if "loyalty_earningrule" in q["sql"]]
    events = {e.payload["event_name"]: e for e in DomainEvent.objects.order_by("-pk")}
    assert len(rule_lookups) == 2  # review_posted, like
    queued = sorted(SignedPackage.loads(row.payload)["args"][0] for row in OrmQ.objects.all())
    assert queued == sorted(
        DomainEvent.objects.filter(payload__event_name="review_posted").values_list("pk", flat=True)
    )
    assert {SignedPackage.loads(row.payload)["func"] for row in OrmQ.objects.all()} == {
        "apps.loyalty.tasks.domain_event_consume"
    }
    assert events["like"].status == "processed"
    assert list(DomainEvent.objects.filter(status="pending").values_list("payload__event_name", flat=True)) == [
        "review_posted",
        "review_posted",
    ]
    # the workflow engine listens to no custom event: its receipt is recorded at once for the pending ones
    assert sorted(DomainEventReceipt.objects.values_list("event_id", "consumer")) == sorted(
        (pk, "automations") for pk in DomainEvent.objects.filter(status="pending").values_list("pk", flat=True)
    )
