"""Migration loyalty 0011: the older per-rule caps become points limits (usage carried over) and back again."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.loyalty.models import Membership, PointLot, Program
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("loyalty", "0010_earning_rule_points_limits")
AFTER = ("loyalty", "0011_rule_caps_become_limits")
WEDNESDAY = datetime(2026, 3, 4, 15, tzinfo=UTC)  # (the test settings' shop time zone is UTC)


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


KEYS = itertools.count(1)


def _lot(membership, rule_id, amount, at, reversed_amount=0):
    return PointLot.objects.create(
        membership=membership,
        amount=amount,
        remaining=amount - reversed_amount,
        reversed_amount=reversed_amount,
        status="active",
        source_type="rule",
        source_key=f"test:{next(KEYS)}",
        rule_id=rule_id,
        created_at=at,
        activates_at=at,
    )


def test_caps_become_limits_with_this_periods_usage_and_come_back():
    old = _migrate(BEFORE)
    try:
        program = Program.objects.create(name="Club", slug="club", currency="USD", points_per_unit=Decimal("1"))
        Rule = old.get_model("loyalty", "EarningRule")
        likes = Rule.objects.create(
            program_id=program.pk, name="Likes", kind="fixed_event", event_name="like", points=2, cap_per_day=10
        )
        bonus = Rule.objects.create(
            program_id=program.pk,
            name="Bonus",
            kind="per_amount",
            points=1,
            cap_per_week=300,
            cap_total=1000,
            awarded_total=400,
        )
        Rule.objects.create(program_id=program.pk, name="Plain", kind="per_amount", points=1)
        alice, bob = (Membership.objects.create(program=program, customer=CustomerFactory()) for _ in range(2))
        _lot(alice, likes.pk, 4, WEDNESDAY - timedelta(hours=2))
        _lot(alice, likes.pk, 6, WEDNESDAY - timedelta(hours=1), reversed_amount=2)
        _lot(alice, likes.pk, 8, WEDNESDAY - timedelta(days=1))  # yesterday: not today's usage
        _lot(bob, likes.pk, 2, WEDNESDAY - timedelta(minutes=5))
        _lot(bob, bonus.pk, 250, WEDNESDAY - timedelta(days=2))  # Monday: this week
        _lot(bob, bonus.pk, 150, WEDNESDAY - timedelta(days=4))  # last week

        with time_machine.travel(WEDNESDAY, tick=False):
            new = _migrate(AFTER)
        Limit = new.get_model("loyalty", "EarningRuleLimit")
        Counter = new.get_model("loyalty", "EarningRuleCounter")
        Take = new.get_model("loyalty", "EarningRuleTake")
        limits = sorted(Limit.objects.values_list("rule_id", "points", "period", "scope"))
        counters = sorted(
            Counter.objects.values_list("limit__rule_id", "limit__period", "bucket", "subject", "used", "limit_value")
        )
        takes = sorted(Take.objects.values_list("lot__amount", "counter__limit__period", "amount", "returned"))
        old_back = _migrate(BEFORE)
        rules = {
            rule.name: (rule.cap_per_day, rule.cap_per_week, rule.cap_per_month, rule.cap_total, rule.awarded_total)
            for rule in old_back.get_model("loyalty", "EarningRule").objects.all()
        }
        limits_left = old_back.get_model("loyalty", "EarningRuleLimit").objects.count()
    finally:
        _migrate(AFTER)

    assert limits == [
        (likes.pk, 10, "day", "customer"),
        (bonus.pk, 300, "week", "customer"),
        (bonus.pk, 1000, "total", "rule"),
    ]
    day, monday = WEDNESDAY.date(), WEDNESDAY.date() - timedelta(days=2)
    assert counters == sorted(
        [
            (likes.pk, "day", day, f"customer:{alice.customer_id}", Decimal("8"), Decimal("10")),  # 4 + (6 - 2)
            (likes.pk, "day", day, f"customer:{bob.customer_id}", Decimal("2"), Decimal("10")),
            (bonus.pk, "week", monday, f"customer:{bob.customer_id}", Decimal("250"), Decimal("300")),
            (bonus.pk, "total", datetime(1970, 1, 1).date(), "", Decimal("400"), Decimal("1000")),
        ]
    )
    assert takes == sorted(
        [
            (2, "day", 2, 0),
            (4, "day", 4, 0),
            (6, "day", 4, 0),
            (150, "total", 150, 0),
            (250, "total", 250, 0),
            (250, "week", 250, 0),
        ]
    )
    assert rules == {
        "Likes": (10, None, None, None, 0),
        "Bonus": (None, 300, None, 1000, 400),
        "Plain": (None, None, None, None, 0),
    }
    assert limits_left == 0
