"""Loyalty triggers and actions driven end to end through the automation engine."""

from typing import Any

import pytest
from django.utils.module_loading import import_string

from apps.automations import services as engine_services
from apps.loyalty import services
from apps.loyalty.automation import loyalty_templates
from apps.loyalty.models import Balance, PointLot
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(monkeypatch, django_capture_on_commit_callbacks):
    """Record the engine's enqueued tasks; `run(write)` commits the write, then drains the queue."""
    from loyalty_site.lib import tasks

    calls: list[tuple[str, tuple]] = []
    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda func, *args, **kwargs: calls.append((func, args)))

    def run(write, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            result = write(*args, **kwargs)
        for _ in range(100):
            if not calls:
                break
            func, call_args = calls.pop(0)
            with django_capture_on_commit_callbacks(execute=True):
                import_string(func)(*call_args)
        return result

    return run


def _activate(name: str, event: str, steps: list[dict], where: dict | None = None):
    trigger: dict[str, Any] = {"event": event}
    if where:
        trigger["where"] = where
    workflow = engine_services.workflow_create(name=name, definition={"schema": 1, "trigger": trigger, "steps": steps})
    return engine_services.workflow_activate(workflow=workflow)


def test_referral_registered_workflow_awards_the_referrer_once(worker):
    program = program_make(referrer_bonus=0, referee_bonus=25)
    referrer, _ = services.member_join(customer=CustomerFactory(), program=program)
    _activate(
        "Referral bonus",
        "referral.registered",
        [
            {
                "id": "s1",
                "action": "loyalty.award_points",
                "params": {"points": 100, "reason": "Thanks for the referral"},
            }
        ],
    )
    referee = CustomerFactory()

    worker(services.referral_register, referee=referee, code=referrer.referral_code)

    lots = PointLot.objects.filter(membership=referrer)
    assert [(lot.amount, lot.source_type, lot.reason, lot.cause.startswith("workflow_run:")) for lot in lots] == [
        (100, "workflow", "Thanks for the referral", True)
    ]
    assert Balance.objects.get(pk=referrer.pk).active == 100
    assert Balance.objects.get(pk=services.membership_for(referee).pk).active == 25


def test_tier_changed_workflow_filters_on_the_loyalty_tier_field(worker):
    from apps.loyalty.models import Tier

    program = program_make()
    Tier.objects.create(program=program, name="Bronze", rank=1, threshold=0)
    silver = Tier.objects.create(program=program, name="Silver", rank=2, threshold=500)
    gold = Tier.objects.create(program=program, name="Gold", rank=3, threshold=1000)
    _activate(
        "Gold welcome",
        "loyalty.tier_changed",
        [{"id": "s1", "action": "loyalty.award_points", "params": {"points": 200, "reason": "Welcome to Gold"}}],
        where={"field": "loyalty.tier", "op": "eq", "value": "Gold"},
    )
    membership, _ = services.member_join(customer=CustomerFactory(), program=program)

    worker(services.tier_set, membership=membership, tier=silver)
    worker(services.tier_set, membership=membership, tier=gold)

    assert list(PointLot.objects.values_list("reason", "amount")) == [("Welcome to Gold", 200)]


def test_the_four_loyalty_templates_validate_against_the_engine():
    created = []
    for key, spec in loyalty_templates().items():
        built = spec.build({})
        workflow = engine_services.workflow_create(name=spec.name, definition=built["definition"], **built["settings"])
        workflow = engine_services.workflow_activate(workflow=workflow)
        created.append((key, workflow.trigger))

    assert created == [
        ("loyalty_referral_bonus", "referral.registered"),
        ("loyalty_points_expiring_reminder", "loyalty.points_expiring"),
        ("loyalty_days_after_joining", "member.joined"),
        ("loyalty_tier_welcome", "loyalty.tier_changed"),
    ]
