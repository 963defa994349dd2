"""Set-based tag writes used by bulk runs: one statement per chunk, whatever the number of customers."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.tagging import services as tag_services
from apps.tagging.models import CustomerTag, TagAudit
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _tags_of(customer):
    return sorted(customer.customer_tags.values_list("tag__name", "source", "source_ref"))


def test_bulk_tags_add_inserts_only_missing_tags_with_the_run_as_source():
    already, fresh, other = CustomerFactory(), CustomerFactory(), CustomerFactory()
    tag_services.tags_add(customer=already, names=["VIP"], source="manual")

    added = tag_services.tags_add_bulk(
        customer_ids=[already.pk, fresh.pk], names=["vip", "Lapsed"], source_ref="bulk_run:7"
    )

    assert added == 3
    assert _tags_of(already) == [("Lapsed", "workflow", "bulk_run:7"), ("VIP", "manual", "")]
    assert _tags_of(fresh) == [("Lapsed", "workflow", "bulk_run:7"), ("VIP", "workflow", "bulk_run:7")]
    assert _tags_of(other) == []
    assert sorted(
        TagAudit.objects.filter(source_ref="bulk_run:7").values_list("customer_id", "tag_name", "action")
    ) == sorted([(already.pk, "Lapsed", "added"), (fresh.pk, "Lapsed", "added"), (fresh.pk, "VIP", "added")])


def test_bulk_tags_add_twice_adds_nothing_the_second_time():
    customers = CustomerFactory.create_batch(3)
    ids = [customer.pk for customer in customers]
    tag_services.tags_add_bulk(customer_ids=ids, names=["Lapsed"], source_ref="bulk_run:1")

    again = tag_services.tags_add_bulk(customer_ids=ids, names=["Lapsed"], source_ref="bulk_run:2")

    assert again == 0
    assert CustomerTag.objects.count() == 3
    assert set(CustomerTag.objects.values_list("source_ref", flat=True)) == {"bulk_run:1"}
    assert TagAudit.objects.count() == 3


def _queries_for_add(count: int) -> int:
    ids = [customer.pk for customer in CustomerFactory.create_batch(count)]
    tag_services.tags_add_bulk(customer_ids=ids[:1], names=["Warm-up", "Second"], source_ref="bulk_run:0")  # tags exist
    with CaptureQueriesContext(connection) as queries:
        added = tag_services.tags_add_bulk(customer_ids=ids, names=["Warm-up", "Second"], source_ref="bulk_run:9")
    assert added == 2 * count - 2
    return len(queries)


def test_bulk_tags_add_query_count_does_not_grow_with_customers():
    small = _queries_for_add(3)
    CustomerTag.objects.all().delete()
    large = _queries_for_add(120)

    assert small == large


def test_bulk_tags_remove_deletes_and_audits_in_constant_queries():
    customers = CustomerFactory.create_batch(30)
    ids = [customer.pk for customer in customers]
    tag_services.tags_add_bulk(customer_ids=ids, names=["Mid value", "Keep"], source_ref="bulk_run:1")

    with CaptureQueriesContext(connection) as few:
        assert tag_services.tags_remove_bulk(customer_ids=ids[:2], names=["MID VALUE"], source_ref="bulk_run:2") == 2
    with CaptureQueriesContext(connection) as many:
        assert (
            tag_services.tags_remove_bulk(customer_ids=ids[2:], names=["Mid value", "Absent"], source_ref="bulk_run:2")
            == 28
        )

    assert len(few) == len(many)
    assert CustomerTag.objects.filter(tag__name="Mid value").count() == 0
    assert CustomerTag.objects.filter(tag__name="Keep").count() == 30
    assert TagAudit.objects.filter(action="removed", source_ref="bulk_run:2").count() == 30


def test_bulk_tags_remove_of_unknown_tags_writes_nothing():
    customer = CustomerFactory()
    tag_services.tags_add_bulk(customer_ids=[customer.pk], names=["Keep"], source_ref="bulk_run:1")

    assert tag_services.tags_remove_bulk(customer_ids=[customer.pk], names=["Nope"], source_ref="bulk_run:2") == 0

    assert _tags_of(customer) == [("Keep", "workflow", "bulk_run:1")]
    assert TagAudit.objects.filter(action="removed").count() == 0


def test_bulk_added_tags_reach_tag_added_workflows_through_the_outbox():
    from apps.automations.services import workflow_activate, workflow_create
    from apps.customers.models import DomainEvent

    listener = workflow_create(
        name="On VIP",
        definition={
            "schema": 1,
            "trigger": {"event": "customer.tag_added"},
            "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["Seen"]}}],
        },
    )
    workflow_activate(workflow=listener)
    already, fresh = CustomerFactory(), CustomerFactory()
    tag_services.tags_add_bulk(customer_ids=[already.pk], names=["VIP"], source_ref="bulk_run:1")
    DomainEvent.objects.all().delete()

    tag_services.tags_add_bulk(customer_ids=[already.pk, fresh.pk], names=["VIP"], source_ref="bulk_run:2")

    events = list(DomainEvent.objects.values_list("name", "customer_id", "payload", "cause", "status"))
    assert events == [
        (
            "customer.tag_added",
            fresh.pk,
            {"customer_id": fresh.pk, "tag": "VIP", "source": "workflow", "source_ref": "bulk_run:2"},
            "bulk_run:2",
            "pending",
        )
    ]
