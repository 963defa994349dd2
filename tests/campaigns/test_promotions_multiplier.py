"""
A campaign's points multiplier makes the order's loyalty earning multiply: when the redemption that carried it is
linked to the order (checkout session, order reference or codes), the order's base points x (m - 1) are given as one
lot citing the campaign — once per order and incentive, whichever of loyalty's earning and the link runs first —
counted by the campaign's points limits, taken back by refunds, cancellations and rollbacks, and never given while
the kill switch is on or the campaign is paused.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.campaigns.models import LimitCounter, Redemption, RedemptionItem
from apps.campaigns.promotions import services
from apps.campaigns.promotions.eligibility import promotions_evaluate
from apps.customers import services as customer_services
from apps.loyalty import services as loyalty
from apps.loyalty.models import Balance, PointLot
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def _double(name="Double points", multiplier="2", limits=None, extra=(), **fields):
    return campaign_with(
        name,
        incentives=[{"kind": "points_multiplier", "multiplier": Decimal(multiplier)}, *extra],
        limits=limits,
        automatic=True,
        **fields,
    )


def _checkout_and_order(customer, total="40.00", session="chk-1"):
    """Redeem at checkout under `session`, then the order arrives with that session (not linked yet)."""
    redemption = services.redemption_redeem(
        cart=cart(("Shoes", 1, total)), customer=customer, codes=[], session=session
    )
    order, _ = customer_services.order_create(
        customer=customer,
        currency="USD",
        lines=[customer_services.LineInput(title="Shoes", quantity=1, unit_price=Decimal(total))],
        checkout_session=session,
    )
    return redemption, order


def _lots(order):
    return list(
        PointLot.objects.filter(order=order)
        .order_by("pk")
        .values_list("source_type", "amount", "reversed_amount", "reason")
    )


def _fresh(order):
    from apps.customers.models import Order

    return Order.objects.get(pk=order.pk)


def test_the_linked_order_earns_its_base_points_again_in_a_lot_citing_the_campaign():
    program_make()
    campaign = _double()
    customer = CustomerFactory()
    redemption, order = _checkout_and_order(customer)

    loyalty.order_points_earn(order=order)
    services.redemption_link_order(order=order)

    assert _lots(order) == [
        ("order", 40, 0, f"Order {order}"),
        ("promotion", 40, 0, f"{campaign.name}: points x2 on order {order}"),
    ]
    assert PointLot.objects.get(source_type="promotion").source_key == (
        f"order:{order.pk}:promotion:incentive:{campaign.incentives.get().pk}"
    )
    assert RedemptionItem.objects.get(redemption=redemption).points == 40
    assert Balance.objects.get(membership__customer=customer).active == 80


def test_the_link_before_loyaltys_earning_gives_the_same_points_and_a_fractional_multiplier_rounds():
    program_make()
    _double(multiplier="1.5")
    customer = CustomerFactory()
    _, order = _checkout_and_order(customer, total="45.00")

    services.redemption_link_order(order=order)  # the promotions consumer ran first
    loyalty.order_points_earn(order=order)

    assert [(kind, amount) for kind, amount, *_ in _lots(order)] == [("promotion", 22), ("order", 45)]  # 22.5 down
    assert Balance.objects.get(membership__customer=customer).active == 67


def test_exactly_once_per_order_however_often_it_is_redeemed_linked_or_earned():
    program_make()
    _double()
    customer = CustomerFactory()
    first = services.redemption_redeem(cart=cart(("Shoes", 1, "40.00")), customer=customer, codes=[], session="s")
    second = services.redemption_redeem(cart=cart(("Shoes", 1, "40.00")), customer=customer, codes=[], session="s")
    order, _ = customer_services.order_create(
        customer=customer,
        currency="USD",
        lines=[customer_services.LineInput(title="Shoes", quantity=1, unit_price=Decimal("40.00"))],
        checkout_session="s",
    )

    linked = services.redemption_link_order(order=order)
    again = services.order_multipliers_award(order=order)
    loyalty.order_points_earn(order=order)
    loyalty.order_points_earn(order=order)

    assert [row.pk for row in linked] == [first.pk, second.pk]
    assert again == 0
    assert [(kind, amount) for kind, amount, *_ in _lots(order)] == [("promotion", 40), ("order", 40)]
    assert list(RedemptionItem.objects.order_by("pk").values_list("points", flat=True)) == [40, 0]


def test_a_refund_takes_back_that_share_and_a_rollback_the_rest_freeing_the_points_limit():
    program_make()
    campaign = _double(limits=[{"measure": "points", "limit": Decimal("100")}])
    customer = CustomerFactory()
    redemption, order = _checkout_and_order(customer)
    loyalty.order_points_earn(order=order)
    services.redemption_link_order(order=order)
    counter = LimitCounter.objects.get(limit__campaign=campaign)
    assert counter.used == Decimal("40")

    # When a quarter of the order is refunded, loyalty takes back a quarter of both lots
    customer_services.refund_create(order=order, amount=Decimal("10.00"))
    loyalty.order_points_reverse(order=_fresh(order))
    assert [(kind, amount, back) for kind, amount, back, _ in _lots(order)] == [
        ("order", 40, 10),
        ("promotion", 40, 10),
    ]

    # When the redemption is rolled back, the multiplier's lot is taken back whole and its room freed in full
    services.redemption_rollback(redemption=redemption)
    counter.refresh_from_db()
    assert [(kind, back) for kind, _, back, _ in _lots(order)] == [("order", 10), ("promotion", 40)]
    assert counter.used == Decimal("0")
    assert Redemption.objects.get(pk=redemption.pk).status == "rolled_back"


def test_a_partial_rollback_takes_back_that_share_of_the_multiplier_and_exactly_that_room():
    program_make()
    campaign = _double(limits=[{"measure": "points", "limit": Decimal("100")}])
    redemption, order = _checkout_and_order(CustomerFactory())
    services.redemption_link_order(order=order)

    services.redemption_rollback(redemption=redemption, amount=Decimal("10.00"))

    assert PointLot.objects.get(source_type="promotion").reversed_amount == 10
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("30")


def test_a_points_limit_counts_bonus_points_and_the_multiplier_together_reducing_to_what_is_left():
    # Given 10 bonus points at checkout and double points on the order, at most 100 points in total
    program_make()
    campaign = _double(
        limits=[{"measure": "points", "limit": Decimal("100"), "action": "reduce"}],
        extra=[{"kind": "bonus_points", "points": 10}],
    )
    alice, bob, carol = CustomerFactory(), CustomerFactory(), CustomerFactory()

    _, order_a = _checkout_and_order(alice, total="40.00", session="a")
    services.redemption_link_order(order=order_a)  # 10 + 40
    _, order_b = _checkout_and_order(bob, total="80.00", session="b")
    services.redemption_link_order(order=order_b)  # 10 + 80 reduced to the 40 left
    with pytest.raises(DomainError) as refused:
        services.redemption_redeem(cart=cart(("Shoes", 1, "40.00")), customer=carol, codes=[])

    promotion = PointLot.objects.filter(source_type="promotion")
    assert sorted(promotion.values_list("amount", flat=True)) == [10, 10, 40, 40]
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("100")
    assert refused.value.code == "budget_exhausted"


def test_a_refusing_points_limit_gives_nothing_past_it_and_a_full_one_refuses_at_checkout():
    program_make()
    campaign = _double(limits=[{"measure": "points", "limit": Decimal("50")}])
    alice, bob, carol = CustomerFactory(), CustomerFactory(), CustomerFactory()
    _, order_a = _checkout_and_order(alice, total="40.00", session="a")
    services.redemption_link_order(order=order_a)
    _, order_b = _checkout_and_order(bob, total="40.00", session="b")  # 10 left: 40 does not fit
    services.redemption_link_order(order=order_b)

    assert PointLot.objects.filter(order=order_b, source_type="promotion").count() == 0
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("40")
    # Once the limit is full, checkout refuses the multiplier at once rather than promise points
    LimitCounter.objects.filter(limit__campaign=campaign).update(used=Decimal("50"))
    answer = promotions_evaluate(cart=cart(("Shoes", 1, "40.00")), customer=carol, codes=[])
    assert answer.skipped[0].refusal.reason == "budget_exhausted"


def test_the_kill_switch_and_a_paused_campaign_give_nothing_on_the_order():
    program_make()
    campaign = _double()
    _, order_a = _checkout_and_order(CustomerFactory(), session="a")
    _, order_b = _checkout_and_order(CustomerFactory(), session="b")

    services.kill_switch_set(on=True, reason="incident")
    services.redemption_link_order(order=order_a)
    services.kill_switch_set(on=False)
    services.campaign_switch(campaign=campaign, on=False, reason="paused")
    services.redemption_link_order(order=order_b)

    assert PointLot.objects.filter(source_type="promotion").count() == 0
    assert list(RedemptionItem.objects.values_list("points", flat=True)) == [0, 0]


def test_an_order_edit_keeps_the_multipliers_points_and_a_cancellation_takes_them_back():
    program_make()
    _double()
    _, order = _checkout_and_order(CustomerFactory())
    loyalty.order_points_earn(order=order)
    services.redemption_link_order(order=order)

    assert loyalty.order_points_adjust(order=order) == 0  # the plan has no promotion lot: kept, not taken back
    customer_services.order_cancel(order=order)
    loyalty.order_points_reverse(order=_fresh(order))

    assert [(kind, amount, back) for kind, amount, back, _ in _lots(order)] == [
        ("order", 40, 40),
        ("promotion", 40, 40),
    ]


def test_a_multiplier_needs_a_member_and_a_multiplier_above_one():
    program_make(auto_enroll=False)
    campaign = _double()
    answer = promotions_evaluate(cart=cart(("Shoes", 1, "40.00")), customer=CustomerFactory(), codes=[])
    assert answer.skipped[0].refusal.reason == "not_a_member"

    for bad in ("1", "0.5", "101"):
        with pytest.raises(ValidationError) as invalid:
            services.incentive_create(campaign=campaign, kind="points_multiplier", multiplier=Decimal(bad))
        assert list(invalid.value.message_dict) == ["multiplier"]
    assert campaign.incentives.count() == 1


def test_a_redeem_naming_an_order_that_arrived_first_links_it_and_multiplies_after_commit(
    settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    program_make()
    campaign = _double()
    customer = CustomerFactory()
    order, _ = customer_services.order_create(
        customer=customer,
        currency="USD",
        external_id="pos-9",
        lines=[customer_services.LineInput(title="Shoes", quantity=1, unit_price=Decimal("40.00"))],
    )

    with django_capture_on_commit_callbacks(execute=True):
        redemption = services.redemption_redeem(
            cart=cart(("Shoes", 1, "40.00")), customer=customer, codes=[], order_ref="pos-9"
        )

    assert Redemption.objects.get(pk=redemption.pk).order_id == order.pk
    assert [(kind, amount) for kind, amount, *_ in _lots(order)] == [("promotion", 40)]
    assert PointLot.objects.get(order=order).reason == f"{campaign.name}: points x2 on order {order}"


def test_a_redemption_of_another_customer_linked_to_the_order_gives_that_order_nothing():
    program_make()
    _double()
    alice, bob = CustomerFactory(), CustomerFactory()
    services.redemption_redeem(cart=cart(("Shoes", 1, "40.00")), customer=alice, codes=[], session="shared")
    order, _ = customer_services.order_create(
        customer=bob,
        currency="USD",
        lines=[customer_services.LineInput(title="Shoes", quantity=1, unit_price=Decimal("40.00"))],
        checkout_session="shared",
    )

    assert len(services.redemption_link_order(order=order)) == 1  # linked (ROI reads it) …
    assert PointLot.objects.filter(source_type="promotion").count() == 0  # … but bob gets no points of alice's


# --- Automatic multiplier campaigns on orders that never went through redeem ---------------------------------


def _pos_order(customer, total="40.00", **fields):
    order, _ = customer_services.order_create(
        customer=customer,
        currency="USD",
        channel="pos",
        lines=[customer_services.LineInput(title="Shoes", quantity=1, unit_price=Decimal(total))],
        **fields,
    )
    return order


def test_an_automatic_double_points_campaign_applies_to_an_order_that_never_redeemed_once():
    program_make()
    campaign = _double(
        limits=[{"measure": "redemptions", "limit": Decimal("10")}],
        validation_rule={"field": "cart.total", "op": "gte", "value": 30},
    )
    customer = CustomerFactory()
    order, small = _pos_order(customer), _pos_order(customer, total="20.00")

    redemption = services.order_automatic_multipliers(order=order)
    again = services.order_automatic_multipliers(order=order)
    refused = services.order_automatic_multipliers(order=small)

    assert (again, refused) == (None, None)  # once per order; the rule (total >= 30) refuses 20.00
    assert (redemption.order_id, redemption.status, redemption.customer_id) == (order.pk, "redeemed", customer.pk)
    assert [(kind, amount, reason) for kind, amount, _, reason in _lots(order)] == [
        ("promotion", 40, f"{campaign.name}: points x2 on order {order}")
    ]
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("1")
    assert RedemptionItem.objects.get().points == 40


def test_an_order_that_redeemed_the_campaign_or_a_discounting_campaign_gets_no_second_redemption():
    program_make()
    _double()
    campaign_with(
        "Ten off and double points",
        automatic=True,
        incentives=[
            {"kind": "percent_order", "percent": Decimal("10")},
            {"kind": "points_multiplier", "multiplier": 2},
        ],
    )
    customer = CustomerFactory()
    _, order = _checkout_and_order(customer)  # redeemed both at checkout
    services.redemption_link_order(order=order)

    assert services.order_automatic_multipliers(order=order) is None
    assert Redemption.objects.count() == 1
    assert [amount for _, amount, *_ in _lots(order)] == [40, 40]  # one lot per multiplier incentive
    # an order without checkout: only the campaign that merely multiplies applies after the fact
    pos = _pos_order(customer)
    services.order_automatic_multipliers(order=pos)
    assert list(RedemptionItem.objects.filter(redemption__order=pos).values_list("campaign__name", flat=True)) == [
        "Double points"
    ]


def test_no_automatic_multiplier_under_the_kill_switch_for_imported_history_or_a_cancelled_order():
    from datetime import timedelta

    from django.utils import timezone

    program_make()
    _double()
    customer = CustomerFactory()
    old = _pos_order(customer, placed_at=timezone.now() - timedelta(days=3))
    cancelled = customer_services.order_cancel(order=_pos_order(customer))
    services.kill_switch_set(on=True, reason="incident")
    live = _pos_order(customer)

    results = [services.order_automatic_multipliers(order=row) for row in (old, cancelled, live)]

    assert results == [None, None, None]
    assert PointLot.objects.filter(source_type="promotion").count() == 0
    assert Redemption.objects.count() == 0


def test_the_promotions_consumer_wants_a_plain_order_only_while_such_a_campaign_is_active_and_applies_it():
    from apps.campaigns import receivers, tasks
    from apps.customers.models import DomainEvent

    program_make()
    customer = CustomerFactory()
    before = _pos_order(customer)
    event_before = DomainEvent.objects.get(name="order.created", payload__order_id=before.pk)
    assert receivers.event_wanted(event_before) is False  # no session, no code, no multiplier campaign

    _double()
    order = _pos_order(customer)
    event = DomainEvent.objects.get(name="order.created", payload__order_id=order.pk)

    assert receivers.event_wanted(event) is True
    assert tasks.domain_event_consume(event.pk) == 1
    assert [(kind, amount) for kind, amount, *_ in _lots(order)] == [("promotion", 40)]


def test_a_rollback_after_the_order_was_deleted_still_takes_the_multiplier_back_and_frees_its_room():
    from apps.customers.models import Order

    program_make()
    campaign = _double(limits=[{"measure": "points", "limit": Decimal("100")}])
    redemption, order = _checkout_and_order(CustomerFactory())
    services.redemption_link_order(order=order)
    PointLot.objects.filter(order=order).update(order=None)  # (the lot's link is SET_NULL too)
    Order.objects.filter(pk=order.pk).delete()

    services.redemption_rollback(redemption=redemption)

    assert PointLot.objects.get(source_type="promotion").reversed_amount == 40
    assert LimitCounter.objects.get(limit__campaign=campaign).used == Decimal("0")
