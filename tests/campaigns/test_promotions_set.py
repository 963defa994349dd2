"""
The promotion set validation keeps per process (`promotion_set`): any change to a campaign, incentive, limit or the
settings — through a service, a `QuerySet.update`, a bulk insert or raw SQL, i.e. made anywhere — renews the stamp
in the database, so a validator holding the set sees it on its very next validation; a warm validation reads only
the stamp with the kill switch and the codes sent (one statement), and the budget counters.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from apps.campaigns.models import Campaign, Incentive, Limit, PromotionSettings, PromotionsVersion
from apps.campaigns.promotions import promotion_set as promotion_set_module
from apps.campaigns.promotions import services
from apps.campaigns.promotions.eligibility import promotions_evaluate
from apps.campaigns.promotions.promotion_set import promotion_set, stamp_read
from tests.campaigns.promo_helpers import campaign_with, cart

pytestmark = pytest.mark.django_db

RULE = {"field": "cart.total", "op": "gte", "value": 50}
RULE_100 = {"field": "cart.total", "op": "gte", "value": 100}
GOODS = (("shirt", 2, "30.00"), ("socks", 1, "5.00"))  # 65.00


@pytest.fixture(autouse=True)
def _stamp_row():
    """The stamp row the migration writes (a flushed database has none: then nothing is kept), no set held yet."""
    PromotionsVersion.objects.get_or_create(pk=1, defaults={"stamp": "initial"})
    promotion_set_module.promotion_set_forget()


def automatic(name: str = "Ten off", **fields):
    return campaign_with(
        name,
        automatic=True,
        validation_rule=RULE,
        incentives=[{"kind": "fixed_order", "amount": Decimal("10.00")}],
        limits=[{"measure": "discount_amount", "limit": Decimal("100.00")}],
        **fields,
    )


def answer(codes=()) -> tuple[str, list[str], list[str]]:
    outcome = promotions_evaluate(cart=cart(*GOODS), customer=None, codes=list(codes))
    applied = [item.candidate.campaign.name for item in outcome.applied]
    reasons = [candidate.refusal.reason for candidate in outcome.skipped if candidate.refusal]
    return f"{outcome.discount_total / 100:.2f}", applied, reasons


def warm(codes=()) -> promotion_set_module.PromotionSet:
    """Validate once and return the set this process now holds (the next validation must reuse or renew it)."""
    answer(codes)
    held = promotion_set_module._current
    assert held is not None
    return held


def test_a_warm_validation_reuses_the_set_and_reads_two_statements():
    for index in range(10):
        automatic(f"Auto {index}")
    campaign_with("Coded", code="SAVE5", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    held = warm(["SAVE5"])  # the code's campaign joins the set on first use

    with CaptureQueriesContext(connection) as queries:
        outcome = promotions_evaluate(cart=cart(*GOODS), customer=None, codes=["save5"])

    assert promotion_set_module._current is held
    assert [item.candidate.campaign.name for item in outcome.applied][:2] == ["Auto 0", "Auto 1"]
    assert len(outcome.applied) == 5  # max_per_order 5 of 11 candidates
    sql = [query["sql"] for query in queries.captured_queries]
    assert len(sql) == 2, sql  # the stamp, the kill switch and the codes; the budget counters
    assert all(
        table in sql[0] for table in ("campaigns_promotionsversion", "platform_globalkillswitch", "campaigns_code")
    )
    assert "campaigns_limitcounter" in sql[1]

    with CaptureQueriesContext(connection) as without_codes:
        promotions_evaluate(cart=cart(*GOODS), customer=None, codes=[])
    assert len(without_codes.captured_queries) == 2  # the stamp and the kill switch; the counters


def test_a_pause_by_queryset_update_is_seen_by_the_next_validation():
    campaign = automatic()
    held = warm()
    assert answer() == ("10.00", ["Ten off"], [])

    Campaign.objects.filter(pk=campaign.pk).update(status="paused")

    assert answer() == ("0.00", [], [])  # (a paused automatic campaign is no candidate)
    assert promotion_set_module._current is not held


def test_a_rule_edited_by_raw_sql_is_seen_by_the_next_validation():
    campaign = automatic()
    warm()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_campaign SET validation_rule = %s WHERE id = %s",
            ['{"field": "cart.total", "op": "gte", "value": 100}', campaign.pk],
        )

    assert answer() == ("0.00", [], ["rule_failed"])


def test_an_incentive_switched_off_or_changed_is_seen_by_the_next_validation():
    campaign = automatic()
    warm()
    Incentive.objects.filter(campaign=campaign).update(amount=Decimal("12.50"))
    assert answer() == ("12.50", ["Ten off"], [])

    Incentive.objects.filter(campaign=campaign).update(is_active=False)
    assert answer() == ("0.00", [], ["campaign_paused"])


def test_a_budget_cut_and_a_settings_change_are_seen_by_the_next_validation():
    first, second = automatic("First", priority=2), automatic("Second", priority=1)
    assert answer() == ("20.00", ["First", "Second"], [])

    Limit.objects.filter(campaign=first).update(limit=Decimal("5.00"))
    assert answer() == ("10.00", ["Second"], ["budget_exhausted"])

    services.settings_update(max_per_order=5)
    Limit.objects.filter(campaign=first).update(limit=Decimal("100.00"))
    PromotionSettings.objects.update(max_per_order=1)
    assert answer() == ("10.00", ["First"], ["max_per_order"])
    assert Campaign.objects.filter(pk__in=[first.pk, second.pk], status="active").count() == 2


def test_a_campaign_inserted_in_bulk_is_seen_by_the_next_validation():
    automatic("First")
    warm()
    [bulk] = Campaign.objects.bulk_create(
        [Campaign(name="Bulk", type="automatic", status="active", validation_rule=RULE)]
    )
    Incentive.objects.bulk_create([Incentive(campaign=bulk, kind="fixed_order", amount=Decimal("1.00"))])

    assert answer() == ("11.00", ["First", "Bulk"], [])


def test_the_kill_switch_read_with_the_stamp_refuses_the_very_next_validation():
    automatic()
    held = warm()
    services.kill_switch_set(on=True, reason="stop")

    assert answer() == ("0.00", [], ["kill_switch"])
    assert promotion_set_module._current is held  # (the switch is read on every validation, not kept)

    services.kill_switch_set(on=False)
    assert answer() == ("10.00", ["Ten off"], [])


def test_without_the_stamp_row_nothing_is_kept():
    automatic()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM campaigns_promotionsversion")
    assert stamp_read() == (None, False)

    assert answer() == ("10.00", ["Ten off"], [])
    assert promotion_set_module._current is None


@pytest.mark.django_db(transaction=True)
def test_an_edit_committed_by_another_connection_is_seen_by_a_cached_validator():
    """Another connection (as another web process would) pauses the campaign; this one's set is warm."""
    campaign = automatic()
    held = warm()
    stamp_before = held.stamp

    def elsewhere() -> None:
        try:
            Campaign.objects.filter(pk=campaign.pk).update(status="paused")
        finally:
            connections.close_all()

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join()

    assert stamp_read()[0] != stamp_before
    assert answer() == ("0.00", [], [])
    current, switched_on = promotion_set()
    assert (current.stamp, switched_on, current.automatic) == (stamp_read()[0], False, ())


def test_campaigns_sharing_a_rule_each_get_the_verdict_the_rule_alone_gives():
    # given: three campaigns with the same failing rule (keys written in another order for one), one with a rule
    # that holds, one with a rule that fails on another leaf; evaluated once per cart, each names its own refusal
    failing = {"all": [{"field": "cart.quantity", "op": "gte", "value": 2}, RULE_100]}
    reordered = {"all": [{"value": 2, "op": "gte", "field": "cart.quantity"}, RULE_100]}
    for index, rule in enumerate([failing, failing, reordered]):
        campaign_with(
            f"Big {index}",
            automatic=True,
            validation_rule=rule,
            incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}],
        )
    automatic("Holds")
    campaign_with(
        "Few items",
        automatic=True,
        validation_rule={"field": "cart.quantity", "op": "gte", "value": 10},
        incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}],
    )

    # when
    outcome = promotions_evaluate(cart=cart(*GOODS), customer=None, codes=[])

    # then
    assert [item.candidate.campaign.name for item in outcome.applied] == ["Holds"]
    refusals = {candidate.campaign.name: candidate.refusal for candidate in outcome.skipped}
    big = (
        "rule_failed",
        "validation_rule.all[1]",
        "Cart total is $65.00; the rule needs it to be at least $100.00",
    )
    assert {name: (r.reason, r.path, r.message) for name, r in refusals.items() if name.startswith("Big")} == {
        "Big 0": big,
        "Big 1": big,
        "Big 2": big,
    }
    assert (refusals["Few items"].path, refusals["Few items"].message) == (
        "validation_rule",
        "Cart quantity is 3; the rule needs it to be at least 10",
    )
