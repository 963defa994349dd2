from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.campaigns import services
from apps.campaigns.models import Segment, SegmentMember
from apps.customers.models import Customer
from apps.customers.services import refund_create
from loyalty_site.lib.conditions import EvaluationContext, audience_queryset, condition_evaluate
from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
BIG_SPENDERS = {"field": "customer.total_spent", "op": "gte", "value": 500}


def members(segment):
    return sorted(SegmentMember.objects.filter(segment=segment).values_list("customer__email", flat=True))


@time_machine.travel(NOW, tick=False)
def test_refresh_makes_the_members_exactly_the_matching_customers_and_follows_changes():
    rich = CustomerFactory(email="rich@example.com")
    edge = CustomerFactory(email="edge@example.com")
    CustomerFactory(email="poor@example.com")
    big_order = make_order(rich, total="800.00")
    make_order(edge, total="500.00")
    segment = services.segment_create(name="Big spenders", condition=BIG_SPENDERS)

    services.segment_refresh(segment=segment)
    assert members(segment) == ["edge@example.com", "rich@example.com"]
    segment.refresh_from_db()
    assert (segment.member_count, segment.refreshed_at) == (2, NOW)

    refund_create(order=big_order, amount="400.00")
    newcomer = CustomerFactory(email="new@example.com")
    make_order(newcomer, total="650.00")
    services.segment_refresh(segment=segment)

    assert members(segment) == ["edge@example.com", "new@example.com"]
    assert Segment.objects.get(pk=segment.pk).member_count == 2


def test_refresh_is_set_based_the_query_count_does_not_grow_with_customers(django_assert_max_num_queries):
    segment = services.segment_create(name="Everyone", condition=None)
    CustomerFactory.create_batch(3)
    with django_assert_max_num_queries(8) as few:
        services.segment_refresh(segment=segment)
    CustomerFactory.create_batch(60)
    with django_assert_max_num_queries(len(few.captured_queries)):
        services.segment_refresh(segment=segment)
    assert SegmentMember.objects.filter(segment=segment).count() == 63


def test_customer_segments_field_agrees_in_memory_and_in_sql():
    vip, other = CustomerFactory(email="vip@example.com"), CustomerFactory(email="other@example.com")
    make_order(vip, total="900.00")
    services.segment_refresh(segment=services.segment_create(name="VIP", condition=BIG_SPENDERS))
    condition = {"field": "customer.segments", "op": "contains", "value": "vip"}
    now = datetime.now(UTC)

    in_sql = set(audience_queryset(condition, now=now, base=Customer.objects.all()).values_list("email", flat=True))
    in_memory = {
        customer.email
        for customer in (vip, other)
        if condition_evaluate(condition, EvaluationContext(customer=customer, now=now)).result
    }

    assert in_sql == in_memory == {"vip@example.com"}


def test_an_invalid_condition_is_refused_with_its_path_and_nothing_is_written():
    with pytest.raises(ValidationError) as error:
        services.segment_create(
            name="Broken",
            condition={"all": [BIG_SPENDERS, {"field": "order.total", "op": "gt", "value": 1}]},
        )

    assert list(error.value.message_dict) == ["condition.all[1].field"]
    assert Segment.objects.count() == 0


def test_segment_names_are_unique_regardless_of_case():
    services.segment_create(name="VIP")
    with pytest.raises(ValidationError) as error:
        services.segment_create(name="vip")
    assert list(error.value.message_dict) == ["name"]


def test_api_creates_refreshes_and_refuses_bad_conditions_with_paths():
    client = APIClient()
    client.force_authenticate(UserFactory(username="integrator"))
    customer = CustomerFactory(email="a@example.com")
    make_order(customer, total="510.00", placed_at=datetime.now(UTC) - timedelta(days=2))

    bad = client.post("/api/v1/segments/", {"name": "Bad", "condition": {"field": "customer.nope", "op": "eq"}})
    created = client.post("/api/v1/segments/", {"name": "Recent big", "condition": BIG_SPENDERS}, format="json")
    refreshed = client.post(f"/api/v1/segments/{created.json()['id']}/refresh/")

    assert bad.status_code == 400
    assert [e["path"] for e in bad.json()["errors"]] == ["condition.field"]
    assert created.status_code == 201
    assert (refreshed.status_code, refreshed.json()["member_count"]) == (200, 1)
    assert Segment.objects.count() == 1


def test_refresh_segments_command_reports_member_counts():
    make_order(CustomerFactory(), total="700.00")
    services.segment_create(name="Big spenders", condition=BIG_SPENDERS)
    services.segment_create(name="Paused", condition=None, is_active=False)

    from io import StringIO

    out = StringIO()
    call_command("refresh_segments", stdout=out)

    assert out.getvalue() == "Big spenders: 1 members\n"
    assert not Segment.objects.get(name="Paused").refreshed_at


def test_setup_schedules_declares_the_segment_refresh_and_idempotency_pruning_jobs():
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=__import__("io").StringIO())

    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert {
        "apps.campaigns.tasks.segments_refresh_task",
        "apps.platform.tasks.idempotency_records_prune_task",
    } <= funcs
