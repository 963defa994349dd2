"""Points limits of earning rules (the platform's limit counters): per customer or for the rule, per period."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from apps.customers import services as customer_services
from apps.loyalty import services
from apps.loyalty.models import EarningRule, EarningRuleCounter, EarningRuleLimit, PointLot
from apps.platform.models import AuditEntry
from loyalty_site.lib.errors import ConflictError
from tests.factories import CustomerFactory, UserFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

SUNDAY_EVENING = datetime(2026, 3, 8, 20, tzinfo=UTC)  # (the test settings' shop time zone is UTC)


def _like_rule(program, points="2"):
    return services.earning_rule_create(
        program=program, name="Social like", kind="fixed_event", event_name="social_like", points=Decimal(points)
    )


def _like(customer):
    event, _ = customer_services.custom_event_record(customer=customer, name="social_like")
    return sum(lot.amount for lot in services.event_points_earn(custom_event=event))


def test_at_most_5_points_a_day_per_customer_from_the_rule_then_a_new_day():
    rule = _like_rule(program_make())
    services.earning_rule_limit_create(rule=rule, points=5, period="day", scope="customer")
    alice, bob = CustomerFactory(), CustomerFactory()

    with time_machine.travel(SUNDAY_EVENING, tick=False):
        alice_day = [_like(alice) for _ in range(4)]
        bob_day = [_like(bob)]
    with time_machine.travel(SUNDAY_EVENING + timedelta(hours=5), tick=False):  # Monday
        alice_next = [_like(alice)]

    assert alice_day == [2, 2, 1, 0]  # the third is reduced to what is left
    assert bob_day == [2]
    assert alice_next == [2]
    assert sorted(EarningRuleCounter.objects.values_list("subject", "used")) == sorted(
        [
            (f"customer:{alice.pk}", Decimal("2")),
            (f"customer:{alice.pk}", Decimal("5")),
            (f"customer:{bob.pk}", Decimal("2")),
        ]
    )


def test_a_rule_wide_weekly_limit_is_shared_by_every_customer_and_applies_to_orders_too():
    program = program_make()
    rule = services.earning_rule_create(
        program=program, name="Bonus per dollar", kind="per_amount", points=Decimal("1")
    )
    services.earning_rule_limit_create(rule=rule, points=60, period="week", scope="rule")
    first, second = CustomerFactory(), CustomerFactory()
    with time_machine.travel(SUNDAY_EVENING - timedelta(days=2), tick=False):
        a = services.order_points_earn(order=make_order(first, total="50.00"))
        b = services.order_points_earn(order=make_order(second, total="50.00"))
    bonus = [[lot.amount for lot in lots if lot.rule_id] for lots in (a, b)]
    assert bonus == [[50], [10]]
    assert PointLot.objects.filter(rule=rule).count() == 2
    counter = EarningRuleCounter.objects.get()
    assert (counter.subject, counter.used, counter.bucket.isoformat()) == ("", Decimal("60"), "2026-03-02")


def test_limits_are_validated_audited_and_cannot_change_shape_once_used():
    rule = _like_rule(program_make())
    for fields, path in (
        ({"points": 0}, "points"),
        ({"points": 5, "period": "year"}, "period"),
        ({"points": 5, "scope": "planet"}, "scope"),
        ({"points": 5, "colour": "red"}, "colour"),
    ):
        with pytest.raises(ValidationError) as refused:
            services.earning_rule_limit_create(rule=rule, **fields)
        assert list(refused.value.message_dict) == [path]
    assert EarningRuleLimit.objects.count() == 0

    limit = services.earning_rule_limit_create(rule=rule, points=3, period="day", scope="customer")
    with time_machine.travel(SUNDAY_EVENING, tick=False):
        customer = CustomerFactory()
        assert [_like(customer), _like(customer)] == [2, 1]
        with pytest.raises(ConflictError):
            services.earning_rule_limit_update(limit=limit, period="week")
        services.earning_rule_limit_update(limit=limit, points=7)  # more room, same shape
        assert _like(customer) == 2
    assert list(EarningRuleCounter.objects.values_list("used", "limit_value")) == [(Decimal("5"), Decimal("7"))]
    assert list(AuditEntry.objects.filter(object_type="loyalty.earningrulelimit").values_list("action", flat=True)) == [
        "created",
        "updated",
    ]


@pytest.fixture
def marketer_api():
    user = UserFactory(username="rulemarketer", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="marketer"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_creates_limits_with_paths_on_bad_input_and_403_without_permission(marketer_api):
    rule = _like_rule(program_make())
    created = marketer_api.post(
        "/api/v1/loyalty/rule-limits/", {"rule": rule.pk, "points": 100, "period": "day", "scope": "customer"}
    )
    assert created.status_code == 201, created.json()
    assert created.json() == {
        "id": created.json()["id"],
        "rule": rule.pk,
        "points": 100,
        "period": "day",
        "scope": "customer",
    }
    bad = marketer_api.post("/api/v1/loyalty/rule-limits/", {"rule": rule.pk, "points": 0, "period": "year"})
    assert bad.status_code == 400
    assert sorted(error["path"] for error in bad.json()["errors"]) == ["period", "points"]

    support = UserFactory(username="helper", is_staff=True, is_superuser=False)
    support.groups.add(Group.objects.get(name="support"))
    client = APIClient()
    client.force_authenticate(support)
    forbidden = client.post("/api/v1/loyalty/rule-limits/", {"rule": rule.pk, "points": 1, "period": "day"})
    changed = client.patch(f"/api/v1/loyalty/rule-limits/{created.json()['id']}/", {"points": 1})
    assert (forbidden.status_code, changed.status_code) == (403, 403)
    assert list(EarningRuleLimit.objects.values_list("points", flat=True)) == [100]


def test_admin_inline_writes_limits_through_the_services(client):
    rule = _like_rule(program_make())
    user = UserFactory(username="ruleadmin", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name="marketer"))
    client.force_login(user)
    page = client.get(f"/admin/loyalty/earningrule/{rule.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "tiers"}
    data.update(
        {
            "program": rule.program_id,
            "conditions": "",
            "limits-TOTAL_FORMS": "1",
            "limits-INITIAL_FORMS": "0",
            "limits-0-points": "100",
            "limits-0-period": "day",
            "limits-0-scope": "customer",
        }
    )
    response = client.post(f"/admin/loyalty/earningrule/{rule.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert list(EarningRuleLimit.objects.values_list("rule_id", "points", "period", "scope")) == [
        (rule.pk, 100, "day", "customer")
    ]
    assert AuditEntry.objects.filter(object_type="loyalty.earningrulelimit", action="created").count() == 1
    assert EarningRule.objects.get().name == "Social like"
