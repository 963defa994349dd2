from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from apps.automations import gallery, registry
from apps.customers.models import Customer
from apps.loyalty import automation, fields, services
from apps.loyalty.models import Balance, EarningRule, LedgerEntry, PointLot, Tier
from loyalty_site.lib.conditions import EvaluationContext, audience_queryset, condition_evaluate
from loyalty_site.lib.errors import DomainError
from tests.factories import CustomerFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _context(customer, **extra):
    return SimpleNamespace(customer=customer, now=T0, extra={"run_id": 42, "cause": "workflow_run:42", **extra})


def test_award_action_is_idempotent_per_effect_key_and_records_the_run():
    program_make()
    customer = CustomerFactory()

    first = automation.run_award_points(_context(customer), {"points": 50, "reason": "Welcome back"}, "run42:s5")
    again = automation.run_award_points(_context(customer), {"points": 50, "reason": "Welcome back"}, "run42:s5")

    assert (first["created"], again["created"], again["balance"]) == (True, False, 50)
    lot = PointLot.objects.get()
    assert (lot.source_type, lot.source_key, lot.cause, lot.reason) == (
        "workflow",
        "workflow:run42:s5",
        "workflow_run:42",
        "Welcome back",
    )


def test_deduct_action_refuses_an_overdraw_and_set_tier_sets_a_floor():
    program = program_make()
    gold = Tier.objects.create(program=program, name="Gold", rank=3, threshold=1000)
    customer = CustomerFactory()
    automation.run_award_points(_context(customer), {"points": 30, "reason": "seed"}, "k1")

    outcome = automation.run_deduct_points(_context(customer), {"points": 20, "reason": "fee"}, "k2")
    replay = automation.run_deduct_points(_context(customer), {"points": 20, "reason": "fee"}, "k2")
    with pytest.raises(DomainError) as error:
        automation.run_deduct_points(_context(customer), {"points": 11, "reason": "fee"}, "k3")
    tier = automation.run_set_tier(_context(customer), {"tier": "gold"}, "k4")

    assert (outcome["balance"], replay["entry_id"]) == (10, outcome["entry_id"])
    assert error.value.code == "insufficient_points"
    assert LedgerEntry.objects.filter(kind="spend").count() == 1
    assert tier == {"old_tier": None, "new_tier": "Gold"}
    membership = services.membership_for(customer)
    assert (membership.tier_id, membership.tier_floor_id) == (gold.pk, gold.pk)


def test_fields_read_in_memory_and_compile_to_sql_agree():
    program = program_make(expiry_policy="days_after_activation", expiry_days=10)
    Tier.objects.create(program=program, name="Silver", rank=2, threshold=0)
    rich, poor, outsider = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer, points in ((rich, 300), (poor, 20)):
        membership, _ = services.member_join(customer=customer, program=program, at=T0)
        services.points_award(membership=membership, points=points, reason="x", key=f"k{customer.pk}", at=T0)
    services.points_earn(
        membership=services.membership_for(rich), amount=7, source_type="api", source_key="p", pending_days=5, at=T0
    )
    now = T0 + timedelta(days=8)

    rows = Customer.objects.annotate(
        balance=fields.compile_balance(),
        pending=fields.compile_pending(),
        tier=fields.compile_tier(),
        lifetime=fields.compile_lifetime(),
        expiring=fields.compile_points_expiring(window={"days": 3}, now=now),
    ).order_by("pk")
    in_sql = {row.pk: (row.balance, row.pending, row.tier, row.lifetime, row.expiring) for row in rows}
    in_memory = {
        customer.pk: (
            fields.read_balance(_context(customer)),
            fields.read_pending(_context(customer)),
            fields.read_tier(_context(customer)),
            fields.read_lifetime(_context(customer)),
            fields.read_points_expiring(SimpleNamespace(customer=customer, now=now, extra={}), window={"days": 3}),
        )
        for customer in (rich, poor, outsider)
    }

    assert (
        in_sql
        == in_memory
        == {
            rich.pk: (300, 7, "Silver", 307, 300),
            poor.pk: (20, 0, "Silver", 20, 20),
            outsider.pk: (0, 0, "", 0, 0),
        }
    )
    assert Balance.objects.count() == 2


def test_weekday_field_reads_the_evaluation_day():
    monday = SimpleNamespace(customer=None, now=datetime(2026, 3, 2, 10, tzinfo=UTC), extra={})
    assert fields.read_weekday(monday) == 1


def test_the_four_templates_are_in_the_gallery_and_build_valid_shapes():
    specs = automation.loyalty_templates()
    built = {key: spec.build({}) for key, spec in specs.items()}
    assert list(specs) == automation.TEMPLATE_KEYS
    assert {spec.trigger for spec in specs.values()} == {
        "referral.registered",
        "loyalty.points_expiring",
        "member.joined",
        "loyalty.tier_changed",
    }

    assert built["loyalty_referral_bonus"]["definition"]["steps"] == [
        {"id": "s1", "action": "loyalty.award_points", "params": {"points": 100, "reason": "Referral bonus"}}
    ]
    assert built["loyalty_points_expiring_reminder"]["definition"]["trigger"] == {
        "event": "loyalty.points_expiring",
        "where": {"field": "loyalty.points_expiring", "window": {"days": 3}, "op": "gt", "value": 0},
    }
    assert built["loyalty_days_after_joining"]["definition"]["steps"][0] == {"id": "s1", "wait": {"days": 5}}
    assert built["loyalty_tier_welcome"]["definition"]["trigger"]["where"] == {
        "field": "loyalty.tier",
        "op": "eq",
        "value": "Gold",
    }


def test_the_templates_are_in_the_gallery_and_registering_again_adds_nothing():
    keys = [spec.key for spec in gallery.template_list()]

    assert [key for key in keys if key.startswith("loyalty_")] == automation.TEMPLATE_KEYS
    assert automation.templates_register() == []
    assert gallery.template_get("loyalty_tier_welcome").build({"tier": "Silver"})["definition"]["steps"][1] == {
        "id": "s2",
        "action": "loyalty.award_points",
        "params": {"points": 200, "reason": "Welcome to Silver"},
    }


def test_triggers_and_actions_are_registered_with_the_engine():
    triggers = {spec.name: spec for spec in registry.triggers_all()}
    actions = {spec.name: spec for spec in registry.actions_all()}

    for name in ("member.joined", "referral.registered", "loyalty.points_expiring", "loyalty.tier_changed"):
        assert triggers[name].group == "Loyalty"
    assert [param.name for param in actions["loyalty.award_points"].params] == ["points", "reason"]
    assert actions["loyalty.set_tier"].group == "Loyalty"


def test_a_refused_deduction_is_a_permanent_action_refusal_that_changes_nothing():
    program_make()
    customer = CustomerFactory()
    action = registry.action_get("loyalty.deduct_points")

    with pytest.raises(registry.ActionRefused) as error:
        action.run(_context(customer), {"points": 5, "reason": "fee"}, "run42:s1")

    assert "Not enough points" in str(error.value)
    assert LedgerEntry.objects.count() == 0


def test_earning_rules_use_the_shared_condition_language():
    program = program_make()
    Tier.objects.create(program=program, name="Base", rank=1, threshold=0)
    silver = Tier.objects.create(program=program, name="Silver", rank=2, threshold=500)
    rule = EarningRule.objects.create(
        program=program,
        name="Silver Mondays",
        kind="time_bonus",
        multiplier=2,
        conditions={
            "all": [
                {"field": "loyalty.tier", "op": "eq", "value": "Silver"},
                {"field": "loyalty.weekday", "op": "eq", "value": 1},
            ]
        },
    )
    member, base = CustomerFactory(), CustomerFactory()
    membership, _ = services.member_join(customer=member, program=program)
    services.tier_set(membership=membership, tier=silver)
    services.member_join(customer=base, program=program)
    monday, tuesday = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)

    earned = [
        [(lot.amount, lot.rule_id) for lot in services.order_points_earn(order=make_order(customer, total="40"), at=at)]
        for customer, at in ((member, monday), (member, tuesday), (base, monday))
    ]

    assert earned == [[(40, None), (40, rule.pk)], [(40, None)], [(40, None)]]


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "loyalty.balance", "op": "gte", "value": 100},
        {"field": "loyalty.pending", "op": "gt", "value": 0},
        {"field": "loyalty.tier", "op": "eq", "value": "silver"},
        {"field": "loyalty.lifetime_points", "op": "lt", "value": 50},
        {"field": "loyalty.points_expiring", "window": {"days": 3}, "op": "gt", "value": 0},
        {"not": {"field": "loyalty.tier", "op": "is_set"}},
    ],
)
def test_audiences_and_in_memory_evaluation_agree_on_loyalty_fields(condition):
    program = program_make(expiry_policy="days_after_activation", expiry_days=10)
    Tier.objects.create(program=program, name="Silver", rank=1, threshold=0)
    customers = [CustomerFactory() for _ in range(4)]
    for customer, points, pending in zip(customers[:3], (300, 20, 120), (0, 7, 0), strict=True):
        membership, _ = services.member_join(customer=customer, program=program, at=T0)
        services.points_award(membership=membership, points=points, reason="x", key=f"k{customer.pk}", at=T0)
        if pending:
            services.points_earn(
                membership=membership,
                amount=pending,
                source_type="api",
                source_key=f"p{customer.pk}",
                pending_days=5,
                at=T0,
            )
    now = T0 + timedelta(days=8)

    in_sql = set(audience_queryset(condition, now=now, base=Customer.objects.all()).values_list("pk", flat=True))
    in_memory = {
        customer.pk
        for customer in customers
        if condition_evaluate(condition, EvaluationContext(customer=customer, now=now)).result
    }

    assert in_sql == in_memory
    assert in_memory  # every case selects somebody
