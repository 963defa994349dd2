"""
A gift card is never overdrawn (PostgreSQL): 200 checkouts spend one card at once while top-ups arrive.
Threads share a pool of at most 30 workers, so the test holds fewer than 40 database connections.
"""

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from apps.campaigns.models import GiftCard, GiftCardEntry, Redemption
from apps.campaigns.promotions import gift_cards, services
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import cart

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
WORKERS = 30


def test_200_concurrent_spends_never_overdraw_and_the_ledger_adds_up():
    campaign = services.campaign_create(name="Gifts", type="gift_cards", status="active")
    card = gift_cards.gift_card_issue(campaign=campaign, amount=Decimal("1000.00"), code="RACE-CARD")
    rng = random.Random(18)
    totals = [Decimal(rng.randint(500, 4000)) / 100 for _ in range(200)]  # 5.00 to 40.00; ~4,500 asked in all

    def spend(total):
        def job():
            redemption = services.redemption_redeem(
                cart=cart(("X", 1, f"{total:.2f}")), customer=None, codes=["race-card"]
            )
            return ("spent", redemption.gift_card_total)

        return job

    def top_up(index):
        def job():
            gift_cards.gift_card_top_up(card=card, amount=Decimal("10.00"), ref=f"race-top-up-{index}")
            return ("topped", Decimal("10.00"))

        return job

    jobs = [spend(total) for total in totals]
    for index in range(10):
        jobs.insert(index * 20, top_up(index))

    def run(job):
        try:
            return job()
        except DomainError as error:
            return (error.code, Decimal("0"))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(run, jobs))

    card.refresh_from_db()
    spent = sum((amount for kind, amount in results if kind == "spent"), Decimal("0"))
    assert card.balance >= 0
    assert spent == Decimal("1100.00") - card.balance
    # Replayed in the order the card's row lock granted them (the entries' keys are drawn under it), the ledger never
    # goes below zero: no spend ever took more than the card held at its turn.
    running = Decimal("0")
    for amount in GiftCardEntry.objects.filter(card=card).order_by("pk").values_list("amount", flat=True):
        running += amount
        assert running >= 0
    assert running == card.balance
    # What is left (the last top-ups may commit after the spends that ran beside them were refused for an empty
    # card) is spendable in full, and no more: the card pays what it holds.
    left = card.balance
    if left > 0:
        last = services.redemption_redeem(
            cart=cart(("X", 1, f"{left + Decimal('5.00'):.2f}")), customer=None, codes=["race-card"]
        )
        assert last.gift_card_total == left
        results.append(("spent", left))
        card.refresh_from_db()
    assert card.balance == 0
    assert {kind for kind, _ in results} <= {"spent", "topped", "gift_card_empty", "nothing_to_redeem"}
    assert sum(GiftCardEntry.objects.filter(card=card).values_list("amount", flat=True)) == card.balance
    entries = GiftCardEntry.objects.filter(card=card, kind="spend")
    assert entries.count() == Redemption.objects.filter(status="redeemed").count()
    assert sorted(-amount for amount in entries.values_list("amount", flat=True)) == sorted(
        Redemption.objects.filter(status="redeemed").values_list("gift_card_total", flat=True)
    )
    # the last balance may have paid part of a cart: at most one spend was smaller than its cart
    assert GiftCard.objects.filter(balance__lt=0).count() == 0
