"""Gift cards: a ledger of a balance spent across orders through validate / redeem / rollback, top-ups, expiry."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from apps.campaigns.models import GiftCard, GiftCardEntry, Redemption
from apps.campaigns.promotions import gift_cards, services
from apps.campaigns.promotions.eligibility import promotions_evaluate
from apps.platform.models import AuditEntry
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart, checkout_json
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gift_campaign():
    return services.campaign_create(name="Gift cards", type="gift_cards", status="active")


def _card(campaign, amount="50.00", **fields):
    return gift_cards.gift_card_issue(campaign=campaign, amount=Decimal(amount), **fields)


def _ledger(card):
    return list(card.entries.order_by("pk").values_list("kind", "amount", "balance_after"))


def test_a_card_is_spent_across_orders_until_empty(gift_campaign):
    # Given a 50.00 card
    card = _card(gift_campaign, code="gift-0001")

    # When it pays a 30.00 order, then a 35.00 order, then a third one
    first = services.redemption_redeem(cart=cart(("Mug", 2, "15.00")), customer=None, codes=["GIFT-0001"])
    second = services.redemption_redeem(cart=cart(("Lamp", 1, "35.00")), customer=None, codes=["gift-0001"])
    with pytest.raises(DomainError) as refused:
        services.redemption_redeem(cart=cart(("Pen", 1, "2.00")), customer=None, codes=["GIFT-0001"])

    # Then the first is paid in full, the second gets the 20.00 left, the third is refused, the ledger says so
    assert (first.gift_card_total, first.discount_total) == (Decimal("30.00"), Decimal("0.00"))
    assert second.gift_card_total == Decimal("20.00")
    assert refused.value.code == "gift_card_empty"
    card.refresh_from_db()
    assert card.balance == Decimal("0.00")
    assert _ledger(card) == [
        ("issue", Decimal("50.00"), Decimal("50.00")),
        ("spend", Decimal("-30.00"), Decimal("20.00")),
        ("spend", Decimal("-20.00"), Decimal("0.00")),
    ]
    assert sum(card.entries.values_list("amount", flat=True)) == card.balance


def test_a_card_pays_what_the_discounts_leave_shipping_included_and_ignores_stacking(gift_campaign):
    # Given an exclusive 10 % automatic promotion and a 200.00 card
    campaign_with(
        "Ten off",
        automatic=True,
        stacking="exclusive",
        incentives=[{"kind": "percent_order", "percent": Decimal("10")}],
    )
    _card(gift_campaign, amount="200.00", code="GIFT-BIG")

    # When a cart of 2 x 45.55 + 3.45 and 4.90 shipping is validated with the card
    outcome = promotions_evaluate(
        cart=cart(("Shoe", 2, "45.55"), ("Lace", 1, "3.45"), shipping="4.90"), customer=None, codes=["GIFT-BIG"]
    )

    # Then the discount comes first (9.46), the card pays the rest (85.09 of goods + 4.90 shipping) after it
    assert [applied.candidate.campaign.name for applied in outcome.applied] == ["Ten off", "Gift cards"]
    assert outcome.discount_total == 946
    card_effect = outcome.applied[1].incentives[0].effect
    assert card_effect.shipping == 490
    assert sum(card_effect.lines.values()) == 9455 - 946
    assert outcome.credit_total == 9455 - 946 + 490


def test_a_card_in_another_currency_or_expired_is_refused_with_the_reason(gift_campaign):
    _card(gift_campaign, code="EURO-CARD", currency="EUR")
    _card(gift_campaign, code="OLD-CARD", expires_at=timezone.now() + timedelta(days=1))
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        outcome = promotions_evaluate(cart=cart(("Mug", 1, "10.00")), customer=None, codes=["EURO-CARD", "OLD-CARD"])
    reasons = [(candidate.code_text, candidate.refusal.reason) for candidate in outcome.skipped]
    assert reasons == [("EURO-CARD", "gift_card_currency"), ("OLD-CARD", "code_expired")]
    assert outcome.applied == []


def test_a_card_held_by_a_customer_is_refused_to_another(gift_campaign):
    holder, other = CustomerFactory(), CustomerFactory()
    _card(gift_campaign, code="MINE-0001", customer=holder)
    outcome = promotions_evaluate(cart=cart(("Mug", 1, "10.00")), customer=other, codes=["MINE-0001"])
    assert outcome.skipped[0].refusal.reason == "code_not_yours"
    assert (
        promotions_evaluate(cart=cart(("Mug", 1, "10.00")), customer=holder, codes=["MINE-0001"]).credit_total == 1000
    )


def test_whole_and_partial_rollbacks_give_the_balance_back(gift_campaign):
    card = _card(gift_campaign, amount="100.00", code="GIFT-BACK")
    whole = services.redemption_redeem(cart=cart(("Mug", 1, "40.00")), customer=None, codes=["GIFT-BACK"])
    partial = services.redemption_redeem(cart=cart(("Lamp", 1, "60.00")), customer=None, codes=["GIFT-BACK"])
    card.refresh_from_db()
    assert card.balance == Decimal("0.00")

    services.redemption_rollback(redemption=whole)
    services.redemption_rollback(redemption=partial, amount=Decimal("15.00"))  # a quarter of 60.00 refunded
    card.refresh_from_db()
    assert card.balance == Decimal("55.00")  # 40.00 + 15.00
    # the rest of the partial one, then a second whole rollback of the same redemption: nothing more
    services.redemption_rollback(redemption=partial)
    card.refresh_from_db()
    assert card.balance == Decimal("100.00")
    assert [kind for kind, _, _ in _ledger(card)] == ["issue", "spend", "spend", "refund", "refund", "refund"]
    assert sum(card.entries.values_list("amount", flat=True)) == card.balance
    with pytest.raises(DomainError):
        services.redemption_rollback(redemption=partial)
    card.refresh_from_db()
    assert card.balance == Decimal("100.00")


def test_a_reservation_holds_the_balance_until_released_or_redeemed(gift_campaign):
    card = _card(gift_campaign, amount="30.00", code="GIFT-HOLD")
    services.redemption_reserve(cart=cart(("Mug", 1, "25.00")), customer=None, codes=["GIFT-HOLD"], session="s-1")
    card.refresh_from_db()
    assert card.balance == Decimal("5.00")
    # the same session redeems: the hold turns into the spend (not twice)
    redeemed = services.redemption_redeem(
        cart=cart(("Mug", 1, "25.00")), customer=None, codes=["GIFT-HOLD"], session="s-1"
    )
    card.refresh_from_db()
    assert (redeemed.status, card.balance) == ("redeemed", Decimal("5.00"))
    # another reservation expires: the periodic release gives it back
    services.redemption_reserve(cart=cart(("Pen", 1, "5.00")), customer=None, codes=["GIFT-HOLD"], session="s-2")
    card.refresh_from_db()
    assert card.balance == Decimal("0.00")
    assert services.reservations_release_expired(now=timezone.now() + timedelta(hours=1)) == 1
    card.refresh_from_db()
    assert card.balance == Decimal("5.00")
    assert sum(card.entries.values_list("amount", flat=True)) == card.balance


def test_top_up_and_expiry_are_ledger_entries(gift_campaign):
    user = UserFactory()
    card = _card(gift_campaign, amount="20.00", code="GIFT-TOP", expires_at=timezone.now() + timedelta(days=10))
    gift_cards.gift_card_top_up(card=card, amount=Decimal("5.50"), user=user, reason="birthday", ref="t-1")
    gift_cards.gift_card_top_up(card=card, amount=Decimal("5.50"), user=user, reason="birthday", ref="t-1")  # retried
    card.refresh_from_db()
    assert card.balance == Decimal("25.50")
    audit = AuditEntry.objects.filter(object_type="campaigns.giftcard", action="updated").get()
    assert audit.changes == {"balance": {"old": "20.00", "new": "25.50"}}

    with time_machine.travel(timezone.now() + timedelta(days=11)):
        assert gift_cards.gift_cards_expire() == 1
        assert gift_cards.gift_cards_expire() == 0
        with pytest.raises(DomainError) as refused:
            gift_cards.gift_card_top_up(card=card, amount=Decimal("1.00"))
    card.refresh_from_db()
    assert card.balance == Decimal("0.00")
    assert _ledger(card)[-1] == ("expire", Decimal("-25.50"), Decimal("0.00"))
    assert refused.value.code == "code_expired"


def test_issue_refuses_bad_input_by_field_and_writes_nothing(gift_campaign):
    discount = campaign_with("Not gifts", incentives=[{"kind": "percent_order", "percent": Decimal("5")}])
    cases = [
        ({"campaign": discount, "amount": Decimal("10")}, "campaign"),
        ({"campaign": gift_campaign, "amount": Decimal("0")}, "amount"),
        ({"campaign": gift_campaign, "amount": Decimal("10"), "currency": "JPY"}, None),  # JPY 10 is fine
        ({"campaign": gift_campaign, "amount": Decimal("10.5"), "currency": "JPY"}, "amount"),
        ({"campaign": gift_campaign, "amount": Decimal("10"), "currency": "XYZ"}, "currency"),
        ({"campaign": gift_campaign, "amount": Decimal("10"), "currency": "KWD"}, "currency"),
    ]
    for fields, path in cases:
        before = GiftCard.objects.count()
        if path is None:
            gift_cards.gift_card_issue(**fields)
            assert GiftCard.objects.count() == before + 1
            continue
        with pytest.raises(ValidationError) as refused:
            gift_cards.gift_card_issue(**fields)
        assert list(refused.value.message_dict) == [path]
        assert GiftCard.objects.count() == before
    # a generated code follows the pattern
    card = _card(gift_campaign)
    assert card.code.code.startswith("GC-") and len(card.code.code) == len("GC-****-****-****")


# --- API --------------------------------------------------------------------------------------------------


@pytest.fixture
def marketer_api():
    user = UserFactory(username="giftmarketer", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="marketer"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_issues_tops_up_lists_and_spends_through_redeem(marketer_api, gift_campaign):
    customer = CustomerFactory()
    issued = marketer_api.post(
        "/api/v1/gift-cards/",
        {"campaign": gift_campaign.pk, "amount": "40.00", "code": "api-gift-1", "customer_id": customer.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="issue-1",
    )
    assert issued.status_code == 201, issued.json()
    card = issued.json()
    assert (card["code"], card["balance"], card["currency"], card["customer"]) == (
        "API-GIFT-1",
        "40.00",
        "USD",
        customer.pk,
    )
    topped = marketer_api.post(f"/api/v1/gift-cards/{card['id']}/top-up/", {"amount": "10.00"}, format="json")
    assert topped.status_code == 201, topped.json()
    redeemed = marketer_api.post(
        "/api/v1/promotions/redeem",
        checkout_json(("Lamp", 1, "45.00"), codes=["API-GIFT-1"], customer_id=customer.pk),
        format="json",
    )
    assert redeemed.status_code == 201, redeemed.json()
    body = redeemed.json()
    assert (body["gift_card_total"], body["discount_total"], body["validation"]["total"]) == ("45.00", "0.00", "0.00")
    assert body["validation"]["applied"][0]["gift_card"] is True
    listed = marketer_api.get(f"/api/v1/gift-cards/?customer={customer.pk}")
    assert [row["balance"] for row in listed.json()["results"]] == ["5.00"]
    ledger = marketer_api.get(f"/api/v1/gift-cards/{card['id']}/ledger/")
    assert [row["kind"] for row in ledger.json()["results"]] == ["spend", "top_up", "issue"]


def test_api_bad_input_is_400_with_paths_and_writes_nothing(marketer_api, gift_campaign):
    response = marketer_api.post(
        "/api/v1/gift-cards/", {"campaign": gift_campaign.pk, "amount": "abc", "customer_id": 0}, format="json"
    )
    assert response.status_code == 400
    assert sorted(error["path"] for error in response.json()["errors"]) == ["amount", "customer_id"]
    response = marketer_api.post(
        "/api/v1/gift-cards/", {"campaign": gift_campaign.pk, "amount": "10.00", "currency": "KWD"}, format="json"
    )
    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["currency"]
    assert GiftCard.objects.count() == 0


def test_without_permission_or_scope_it_is_403_and_nothing_changes(gift_campaign):
    from apps.platform.services import api_token_create

    card = _card(gift_campaign, code="GIFT-SAFE")
    # a staff user without gift-card permissions
    nobody = APIClient()
    nobody.force_authenticate(UserFactory(username="nobody", is_staff=True, is_superuser=False))
    # a marketer whose token has only the ingest scope
    marketer = UserFactory(username="scoped", is_staff=False, is_superuser=False)
    marketer.groups.add(Group.objects.get(name="marketer"))
    _, raw = api_token_create(user=marketer, scopes=["ingest"], name="ingest only")
    scoped = APIClient()
    scoped.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    # the integration role reads balances but cannot issue or top up
    shop = UserFactory(username="till", is_staff=False, is_superuser=False)
    shop.groups.add(Group.objects.get(name="integration"))
    till = APIClient()
    till.force_authenticate(shop)

    for client in (nobody, scoped, till):
        issued = client.post("/api/v1/gift-cards/", {"campaign": gift_campaign.pk, "amount": "10.00"}, format="json")
        topped = client.post(f"/api/v1/gift-cards/{card.pk}/top-up/", {"amount": "10.00"}, format="json")
        assert (issued.status_code, topped.status_code) == (403, 403)
    assert nobody.get("/api/v1/gift-cards/").status_code == 403
    assert scoped.get("/api/v1/gift-cards/").status_code == 403
    assert till.get("/api/v1/gift-cards/").status_code == 200
    card.refresh_from_db()
    assert (GiftCard.objects.count(), card.balance, GiftCardEntry.objects.count()) == (1, Decimal("50.00"), 1)
    assert not Permission.objects.filter(codename="add_giftcard", group__name="integration").exists()


# --- Admin ------------------------------------------------------------------------------------------------


def test_admin_issues_and_tops_up_through_the_services(client, gift_campaign):
    user = UserFactory(username="giftadmin", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name="marketer"))
    client.force_login(user)
    response = client.post(
        "/admin/campaigns/giftcard/add/",
        {"campaign": gift_campaign.pk, "amount": "25.00", "currency": "", "card_code": "desk-1", "customer": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    card = GiftCard.objects.get()
    assert (card.code.code, card.balance) == ("DESK-1", Decimal("25.00"))
    bad = client.post(f"/admin/campaigns/giftcard/{card.pk}/change/", {"top_up": "1.005", "top_up_reason": ""})
    assert bad.status_code == 200  # the form again, with the error
    response = client.post(f"/admin/campaigns/giftcard/{card.pk}/change/", {"top_up": "5.00", "top_up_reason": "fix"})
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.balance == Decimal("30.00")
    assert AuditEntry.objects.filter(object_type="campaigns.giftcard").count() == 2
    page = client.get(f"/admin/campaigns/giftcard/{card.pk}/change/")
    assert b"top_up" in page.content and b"fix" in page.content
    assert Redemption.objects.count() == 0
