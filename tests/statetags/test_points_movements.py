"""
Points movements go through the outbox: every ledger write (earn, spend, expire, adjust, activation, hold
release) emits one `loyalty.points_changed` event in the writer's transaction, and the engine re-evaluates the
customer's state tags on loyalty fields on exactly that event — once per movement, not on the order that
caused it (whose points loyalty's own consumer writes later).
"""

from datetime import timedelta

import pytest

from apps.automations import state_tags
from apps.customers import outbox
from apps.customers.models import DomainEvent
from apps.loyalty import services
from apps.loyalty.models import Balance, Membership
from apps.tagging.models import TagAudit
from tests.loyalty.conftest import program_make

from .conftest import NOW, tags

pytestmark = pytest.mark.django_db

RICH = {
    "schema": 1,
    "trigger": {"event": "customer.state_tag", "where": {"field": "loyalty.balance", "op": "gte", "value": 500}},
    "state": {"tag": "500 club"},
}


@pytest.fixture
def reevaluations(monkeypatch):
    """The event names on which the engine re-evaluated a customer's state tags, in order."""
    seen: list[str] = []
    real = state_tags.customer_reevaluate
    follow_event: list[str] = []

    from apps.automations.engine import opening

    real_follow = opening._state_tags_follow

    def follow(event, *, now):
        follow_event.append(event.name)
        try:
            return real_follow(event, now=now)
        finally:
            follow_event.pop()

    def reevaluate(**kwargs):
        seen.append(follow_event[-1] if follow_event else "?")
        return real(**kwargs)

    monkeypatch.setattr(opening, "_state_tags_follow", follow)
    monkeypatch.setattr(state_tags, "customer_reevaluate", reevaluate)
    return seen


def _state_tag(feed) -> int:
    created = feed.post("/api/v1/workflows/", {"name": "500 club", "definition": RICH}, expect=201)
    feed.post(f"/api/v1/workflows/{created['id']}/activate/")
    return created["id"]


def _balance(customer) -> int:
    return Balance.objects.get(membership__customer=customer).available


def test_earning_adds_the_tag_and_spending_takes_it_off_once_per_movement(clock, feed, reevaluations):
    program_make()
    _state_tag(feed)
    ana = feed.customer("c-ana")

    feed.order(ana, "300.00")  # earns 300 points: below the line
    assert (tags(ana), _balance(ana)) == (set(), 300)
    feed.order(ana, "250.00")  # 550 points
    assert (tags(ana), _balance(ana)) == ({"500 club"}, 550)

    feed.post(f"/api/v1/loyalty/customers/{ana.pk}/deduct/", {"points": 100, "reason": "Gift"})

    assert (tags(ana), _balance(ana)) == (set(), 450)
    assert list(TagAudit.objects.filter(customer=ana).values_list("action", flat=True).order_by("pk")) == [
        "added",
        "removed",
    ]
    # re-evaluated on each of the three movements, never on the orders themselves nor twice
    assert reevaluations == ["loyalty.points_changed"] * 3
    events = DomainEvent.objects.filter(name="loyalty.points_changed", customer=ana).order_by("pk")
    assert [(event.payload["kinds"], event.payload["active_delta"], event.payload["balance"]) for event in events] == [
        (["earn"], 300, 300),
        (["earn"], 250, 550),
        (["spend"], -100, 450),
    ]
    assert set(events.values_list("status", flat=True)) == {"processed"}


def test_an_award_through_the_api_adds_the_tag_and_a_reward_redemption_takes_it_off(clock, feed):
    from apps.loyalty.models import Reward

    program = program_make()
    _state_tag(feed)
    bo = feed.customer("c-bo")
    feed.post(f"/api/v1/loyalty/customers/{bo.pk}/award/", {"points": 600, "reason": "Welcome"})
    assert tags(bo) == {"500 club"}
    mug = Reward.objects.create(program=program, name="Mug", kind="material_prize", points_cost=200)

    feed.post(f"/api/v1/loyalty/customers/{bo.pk}/redeem/", {"reward": mug.pk})

    assert (tags(bo), _balance(bo)) == (set(), 400)


def test_pending_points_tag_on_activation_and_untag_on_expiry_through_the_batch_jobs(
    clock, feed, django_capture_on_commit_callbacks
):
    program_make(pending_days=14, expiry_policy="days_after_activation", expiry_days=30)
    _state_tag(feed)
    cy, dee = feed.customer("c-cy"), feed.customer("c-dee")
    feed.order(cy, "700.00")
    feed.order(dee, "100.00")
    assert tags(cy) == set()  # pending points are not a balance yet

    clock.move_to(NOW + timedelta(days=14))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.points_activate_due() == 2

    assert (tags(cy), tags(dee)) == ({"500 club"}, set())
    assert DomainEvent.objects.filter(name="loyalty.points_changed", payload__kinds=["activate"]).count() == 2

    clock.move_to(NOW + timedelta(days=14 + 30))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.points_expire_due() == 2

    assert (tags(cy), _balance(cy)) == (set(), 0)
    assert DomainEvent.objects.filter(name="loyalty.points_changed", payload__kinds=["expire"]).count() == 2


def test_a_released_hold_adds_the_tag(clock, feed):
    program_make()
    _state_tag(feed)
    eve = feed.customer("c-eve")
    membership, _ = services.member_join(customer=eve)
    hold = services.points_hold(membership=membership, source_prefix="api:", reason="Review")
    feed.post(f"/api/v1/loyalty/customers/{eve.pk}/award/", {"points": 800, "reason": "Big"})
    assert (tags(eve), Balance.objects.get(pk=membership.pk).pending, _balance(eve)) == (set(), 800, 0)

    with feed.capture(execute=True):
        services.points_hold_release(hold=hold)

    assert tags(eve) == {"500 club"}


def test_a_refused_spend_writes_no_event_and_changes_nothing(clock, feed):
    program_make()
    _state_tag(feed)
    fay = feed.customer("c-fay")
    feed.post(f"/api/v1/loyalty/customers/{fay.pk}/award/", {"points": 520, "reason": "Welcome"})
    before = DomainEvent.objects.filter(name="loyalty.points_changed").count()

    response = feed.client.post(
        f"/api/v1/loyalty/customers/{fay.pk}/deduct/", {"points": 900, "reason": "Too much"}, format="json"
    )

    assert response.status_code == 400
    assert (response.json()["error"], response.json()["errors"][0]["path"]) == ("insufficient_points", "points")
    assert DomainEvent.objects.filter(name="loyalty.points_changed").count() == before
    assert (tags(fay), _balance(fay)) == ({"500 club"}, 520)


def test_no_event_is_written_when_nothing_listens_to_points(clock, feed):
    program_make()
    gus = feed.customer("c-gus")

    feed.post(f"/api/v1/loyalty/customers/{gus.pk}/award/", {"points": 50, "reason": "Hi"})

    assert _balance(gus) == 50
    assert not outbox.domain_event_listened("loyalty.points_changed")
    assert DomainEvent.objects.filter(name="loyalty.points_changed").count() == 0
    assert Membership.objects.filter(customer=gus).count() == 1
