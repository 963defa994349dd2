"""
`tags_add_many`: `tags_add` for many customers at once (the engine's set-based lane, issue 12) — the same
rows, audit and `customer.tag_added` events as one `tags_add` per customer, in a fixed number of statements.
Runs on SQLite and on PostgreSQL (where it is one INSERT … RETURNING).
"""

import pytest
from django.core.exceptions import ValidationError

from apps.customers.models import DomainEvent
from apps.tagging import services
from apps.tagging.models import CustomerTag, Tag, TagAudit
from tests.automations.test_engine_support import active_workflow, add_tags
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _rows() -> list[tuple[int, str, str, str]]:
    return sorted(CustomerTag.objects.values_list("customer_id", "tag__name", "source", "source_ref"))


def test_many_customers_get_their_own_tags_once_and_each_addition_returns_what_it_added():
    # given a customer who has VIP already, and three others
    Tag.objects.create(name="VIP")
    has_vip, first, second, third = CustomerFactory.create_batch(4)
    services.tags_add(customer=has_vip, names=["VIP"], source="manual")

    # when tags are added to all four, the second customer being named twice (same tag, other ref)
    added = services.tags_add_many(
        additions=[
            (has_vip, ["vip", "Parent"], "workflow_run:1"),
            (first, ["VIP"], "workflow_run:2"),
            (second, [" Parent ", "parent"], "workflow_run:3"),
            (second, ["Parent"], "workflow_run:4"),
            (third, [], "workflow_run:5"),
        ],
        source="workflow",
    )

    # then each (customer, tag) was added once, by the first addition naming it, and nothing else changed
    assert [[row.tag.name for row in rows] for rows in added] == [["Parent"], ["VIP"], ["Parent"], [], []]
    assert [row.source_ref for rows in added for row in rows] == ["workflow_run:1", "workflow_run:2", "workflow_run:3"]
    assert all(row.pk for rows in added for row in rows)
    assert _rows() == sorted(
        [
            (has_vip.pk, "VIP", "manual", ""),
            (has_vip.pk, "Parent", "workflow", "workflow_run:1"),
            (first.pk, "VIP", "workflow", "workflow_run:2"),
            (second.pk, "Parent", "workflow", "workflow_run:3"),
        ]
    )
    assert Tag.objects.count() == 2
    # audited like tags_add: one row per added tag
    audit = sorted(TagAudit.objects.filter(source="workflow").values_list("customer_id", "tag_name", "action"))
    assert audit == sorted(
        [(has_vip.pk, "Parent", "added"), (first.pk, "VIP", "added"), (second.pk, "Parent", "added")]
    )
    # and announced like tags_add: nobody listens, so the events are written processed at once
    events = sorted(
        (event.customer_id, event.payload["tag"], event.payload["source_ref"], event.cause, event.status)
        for event in DomainEvent.objects.filter(name="customer.tag_added").exclude(payload__source="manual")
    )
    assert events == sorted(
        [
            (has_vip.pk, "Parent", "workflow_run:1", "workflow_run:1", "processed"),
            (first.pk, "VIP", "workflow_run:2", "workflow_run:2", "processed"),
            (second.pk, "Parent", "workflow_run:3", "workflow_run:3", "processed"),
        ]
    )


def test_when_a_workflow_listens_the_added_tags_events_are_handed_to_the_engine(monkeypatch):
    # given a workflow started by a tag being added, and the queue recorded
    from loyalty_site.lib import tasks

    queued: list[tuple[str, tuple]] = []
    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda func, *args, **kwargs: queued.append((func, args)))
    active_workflow("on tag", "customer.tag_added", [add_tags("Followed")])
    customers = CustomerFactory.create_batch(2)

    services.tags_add_many(additions=[(customer, ["VIP"], "workflow_run:9") for customer in customers])

    # then each event is pending with the engine's task queued, as tags_add leaves it
    events = list(DomainEvent.objects.filter(name="customer.tag_added").order_by("pk"))
    assert [(event.customer_id, event.status) for event in events] == [(c.pk, "pending") for c in customers]
    assert queued == [("apps.automations.tasks.process_domain_event", (event.pk,)) for event in events]


def test_a_bad_name_refuses_the_whole_call_and_changes_nothing():
    customers = CustomerFactory.create_batch(2)

    with pytest.raises(ValidationError):
        services.tags_add_many(additions=[(customers[0], ["ok"], "r"), (customers[1], ["x" * 101], "r")])

    assert CustomerTag.objects.count() == TagAudit.objects.count() == 0
    assert not Tag.objects.exists()


def test_the_statements_do_not_grow_with_the_customers(django_assert_num_queries):
    Tag.objects.create(name="VIP")
    few, many = CustomerFactory.create_batch(2), CustomerFactory.create_batch(30)

    # the tags' look-up, the pairs present (SQLite only: PostgreSQL's INSERT … ON CONFLICT DO NOTHING RETURNING
    # says what it added), the insert, the audit insert, "does anyone listen to customer.tag_added" (an active
    # workflow on it, the active state tags: inside an engine batch both come from its snapshot), the events
    from django.db import connection

    expected = 6 if connection.vendor == "postgresql" else 7
    with django_assert_num_queries(expected):
        services.tags_add_many(additions=[(customer, ["VIP"], "r") for customer in few])
    with django_assert_num_queries(expected):
        services.tags_add_many(additions=[(customer, ["VIP"], "r") for customer in many])
    assert CustomerTag.objects.count() == 32
