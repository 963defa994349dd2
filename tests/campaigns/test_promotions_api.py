"""validate / qualify / reserve / redeem / rollback / kill switch through the API: exact cents, paths, permissions."""

from datetime import datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from apps.campaigns.models import Campaign, Code, LimitCounter, Redemption
from apps.campaigns.promotions import services
from apps.platform.kill_switch import kill_switch_is_on
from apps.platform.models import KillSwitchChange
from tests.campaigns.promo_helpers import campaign_with, checkout_json
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

PERMS = [
    "view_campaign",
    "add_campaign",
    "add_redemption",
    "change_redemption",
    "view_redemption",
    "view_promotionsettings",
    "view_code",
    "add_code",
]


@pytest.fixture
def marketer():
    user = UserFactory(username="marketer", is_staff=False, is_superuser=False)
    user.user_permissions.set(
        [
            *Permission.objects.filter(content_type__app_label="campaigns", codename__in=PERMS),
            Permission.objects.get(content_type__app_label="platform", codename="campaign_kill_switch"),
        ]
    )
    return user


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.force_authenticate(marketer)
    return client


@pytest.fixture
def rule_campaign():
    return campaign_with(
        "Shoes 10",
        code="SHOES10",
        incentives=[{"kind": "percent_order", "percent": Decimal("10")}],
        validation_rule={
            "all": [
                {
                    "field": "cart.lines",
                    "op": "any",
                    "where": {
                        "all": [
                            {"field": "line.title", "op": "contains", "value": "shoe"},
                            {"field": "line.quantity", "op": "gte", "value": 2},
                        ]
                    },
                },
                {"field": "cart.total", "op": "gte", "value": 100},
            ]
        },
    )


def test_validate_applies_with_per_line_and_order_discounts(api, rule_campaign):
    response = api.post(
        "/api/v1/promotions/validate",
        checkout_json(("Trail shoe", 2, "45.55"), ("Lace", 1, "3.45"), codes=["shoes10"], shipping="4.90"),
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["subtotal"] == "94.55"
    assert body["discount_total"] == "0.00"  # 94.55 < 100: refused
    assert body["skipped"] == [
        {
            "campaign": rule_campaign.pk,
            "name": "Shoes 10",
            "code": "SHOES10",
            "reason": "rule_failed",
            "path": "validation_rule.all[1]",
            "message": "Cart total is $94.55; the rule needs it to be at least $100.00",
        }
    ]
    response = api.post(
        "/api/v1/promotions/validate",
        checkout_json(("Trail shoe", 2, "55.55"), ("Lace", 1, "3.45"), codes=["shoes10"], shipping="4.90"),
        format="json",
    )
    body = response.json()
    assert body["subtotal"] == "114.55"
    assert body["discount_total"] == "11.46"  # 11.455 -> 11.46 (half even: 1145.5 -> 1146)
    assert body["total"] == "107.99"
    assert body["lines"] == [
        {"index": 0, "subtotal": "111.10", "discount": "11.11", "total": "99.99"},
        {"index": 1, "subtotal": "3.45", "discount": "0.35", "total": "3.10"},
    ]
    assert body["applied"][0]["code"] == "SHOES10"
    assert Redemption.objects.count() == 0  # read-only


def test_validate_rule_over_cart_structure_names_the_failed_quantifier(api, rule_campaign):
    response = api.post(
        "/api/v1/promotions/validate", checkout_json(("Trail shoe", 1, "150.00"), codes=["SHOES10"]), format="json"
    )
    [skipped] = response.json()["skipped"]
    assert (skipped["reason"], skipped["path"]) == ("rule_failed", "validation_rule.all[0]")


def test_unknown_expired_and_foreign_codes_say_why(api, rule_campaign):
    services.code_create(campaign=rule_campaign, code="old1", expires_at=timezone.make_aware(datetime(2020, 1, 1)))
    other = CustomerFactory()
    code = services.code_create(campaign=rule_campaign, code="MINE1")
    Code.objects.filter(pk=code.pk).update(customer=other)
    response = api.post(
        "/api/v1/promotions/validate", checkout_json(("X", 1, "10.00"), codes=["nope", "OLD1", "mine1"]), format="json"
    )
    assert [(row["code"], row["reason"], row["path"]) for row in response.json()["skipped"]] == [
        ("NOPE", "code_unknown", "codes[0]"),
        ("OLD1", "code_expired", "code.expires_at"),
        ("MINE1", "code_not_yours", "code.customer"),
    ]


def test_bad_input_is_400_with_paths_and_writes_nothing(api):
    before = (Campaign.objects.count(), Redemption.objects.count())
    response = api.post(
        "/api/v1/promotions/redeem",
        {"currency": "EUR", "lines": [{"quantity": 0, "unit_price": "-1"}], "codes": "X"},
        format="json",
    )
    assert response.status_code == 400
    paths = sorted(error["path"] for error in response.json()["errors"])
    assert paths == ["codes", "currency", "lines[0].quantity", "lines[0].unit_price"]
    response = api.post(
        "/api/v1/promotion-campaigns/",
        {
            "name": "Bad",
            "validation_rule": {"all": [{"field": "cart.total", "op": "gte", "value": "lots"}]},
            "incentives": [{"kind": "percent_order"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["validation_rule.all[0].value"]
    response = api.post(
        "/api/v1/promotion-campaigns/", {"name": "Bad", "incentives": [{"kind": "percent_order"}]}, format="json"
    )
    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["incentives[0].percent"]
    assert (Campaign.objects.count(), Redemption.objects.count()) == before


def test_a_user_without_permission_gets_403_and_nothing_changes(rule_campaign):
    client = APIClient()
    client.force_authenticate(UserFactory(username="nobody", is_staff=True, is_superuser=False))
    assert client.post("/api/v1/promotions/validate", checkout_json(("X", 1, "1.00")), format="json").status_code == 403
    response = client.post("/api/v1/promotions/kill-switch", {"on": True, "reason": "x"}, format="json")
    assert response.status_code == 403
    assert not kill_switch_is_on()
    assert KillSwitchChange.objects.count() == 0


def test_redeem_then_partial_and_whole_rollback_give_budgets_back(api, rule_campaign):
    services.limit_create(campaign=rule_campaign, measure="discount_amount", limit=Decimal("1000.00"))
    services.limit_create(campaign=rule_campaign, measure="redemptions", limit=Decimal("10"))
    payload = checkout_json(("Trail shoe", 2, "60.00"), codes=["SHOES10"], order_ref="o-1")
    response = api.post("/api/v1/promotions/redeem", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["discount_total"], body["order_total"]) == ("redeemed", "12.00", "120.00")
    replay = api.post("/api/v1/promotions/redeem", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert replay.json()["id"] == body["id"]
    used = lambda: sorted(LimitCounter.objects.values_list("limit__measure", "used"))  # noqa: E731
    assert used() == [("discount_amount", Decimal("12.00")), ("redemptions", Decimal("1.00"))]
    partial = api.post(f"/api/v1/promotions/redemptions/{body['id']}/rollback", {"amount": "30.00"}, format="json")
    assert partial.status_code == 200, partial.json()
    assert used() == [("discount_amount", Decimal("9.00")), ("redemptions", Decimal("1.00"))]
    # the discount given back is recorded too: 12.00 x 30/120 = 3.00
    given_back = partial.json()
    assert (given_back["rolled_back_total"], given_back["discount_rolled_back"]) == ("30.00", "3.00")
    assert [item["discount_returned"] for item in given_back["items"]] == ["3.00"]
    whole = api.post(f"/api/v1/promotions/redemptions/{body['id']}/rollback", {}, format="json")
    assert whole.json()["status"] == "rolled_back"
    assert (whole.json()["discount_rolled_back"], whole.json()["items"][0]["discount_returned"]) == ("12.00", "12.00")
    assert used() == [("discount_amount", Decimal("0.00")), ("redemptions", Decimal("0.00"))]
    again = api.post(f"/api/v1/promotions/redemptions/{body['id']}/rollback", {}, format="json")
    assert again.status_code == 409


def test_reservation_holds_the_budget_until_it_expires(api):
    campaign_with(
        "First two",
        code="TWO",
        incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}],
        limits=[{"measure": "redemptions", "limit": Decimal("1")}],
    )
    with time_machine.travel(datetime(2026, 11, 30, 10, 0, tzinfo=timezone.get_current_timezone()), tick=False):
        reserved = api.post(
            "/api/v1/promotions/reserve", checkout_json(("X", 1, "20.00"), codes=["TWO"], session="s-1"), format="json"
        )
        assert reserved.status_code == 201, reserved.json()
        refused = api.post("/api/v1/promotions/redeem", checkout_json(("X", 1, "20.00"), codes=["TWO"]), format="json")
        assert (refused.status_code, refused.json()["error"]) == (400, "budget_exhausted")
    with time_machine.travel(datetime(2026, 11, 30, 10, 16, tzinfo=timezone.get_current_timezone()), tick=False):
        redeemed = api.post(
            "/api/v1/promotions/redeem", checkout_json(("X", 1, "20.00"), codes=["TWO"], session="s-2"), format="json"
        )
        assert redeemed.status_code == 201, redeemed.json()
    assert sorted(Redemption.objects.values_list("session", "status")) == [("s-1", "released"), ("s-2", "redeemed")]
    assert LimitCounter.objects.get().used == Decimal("1.00")


def test_reserve_then_redeem_same_session_converts_the_reservation(api):
    campaign_with(
        "One",
        code="ONE",
        incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}],
        limits=[{"measure": "redemptions", "limit": Decimal("1")}],
    )
    api.post(
        "/api/v1/promotions/reserve", checkout_json(("X", 1, "20.00"), codes=["ONE"], session="s-9"), format="json"
    )
    redeemed = api.post(
        "/api/v1/promotions/redeem", checkout_json(("X", 1, "20.00"), codes=["ONE"], session="s-9"), format="json"
    )
    assert redeemed.status_code == 201, redeemed.json()
    assert list(Redemption.objects.values_list("status", flat=True)) == ["redeemed"]
    assert LimitCounter.objects.get().used == Decimal("1.00")


def test_one_redemption_per_customer_per_week_across_the_week_boundary(api):
    customer = CustomerFactory()
    campaign_with(
        "Weekly",
        automatic=True,
        incentives=[{"kind": "fixed_order", "amount": Decimal("3.00")}],
        limits=[{"measure": "redemptions", "limit": Decimal("1"), "period": "week", "scope": "customer"}],
    )
    zone = timezone.get_current_timezone()
    payload = checkout_json(("X", 1, "20.00"), customer_id=customer.pk)
    with time_machine.travel(datetime(2026, 11, 29, 23, 50, tzinfo=zone), tick=False):  # Sunday
        assert api.post("/api/v1/promotions/redeem", payload, format="json").status_code == 201
        second = api.post("/api/v1/promotions/redeem", payload, format="json")
        assert (second.status_code, second.json()["error"]) == (400, "budget_exhausted")
        assert (
            api.post("/api/v1/promotions/validate", payload, format="json").json()["skipped"][0]["reason"]
            == "budget_exhausted"
        )
    with time_machine.travel(datetime(2026, 11, 30, 0, 5, tzinfo=zone), tick=False):  # Monday: a new week
        assert api.post("/api/v1/promotions/redeem", payload, format="json").status_code == 201
    anonymous = api.post("/api/v1/promotions/validate", checkout_json(("X", 1, "20.00")), format="json").json()
    assert anonymous["skipped"][0]["reason"] == "customer_required"


def test_money_cap_reduces_to_what_is_left_when_the_limit_says_so(api):
    campaign_with(
        "Capped",
        code="CAP",
        incentives=[{"kind": "fixed_order", "amount": Decimal("30.00")}],
        limits=[{"measure": "discount_amount", "limit": Decimal("50.00"), "action": "reduce"}],
    )
    first = api.post(
        "/api/v1/promotions/redeem", checkout_json(("X", 1, "100.00"), codes=["CAP"]), format="json"
    ).json()
    second = api.post(
        "/api/v1/promotions/redeem", checkout_json(("X", 1, "100.00"), codes=["CAP"]), format="json"
    ).json()
    assert (first["discount_total"], second["discount_total"]) == ("30.00", "20.00")
    third = api.post("/api/v1/promotions/redeem", checkout_json(("X", 1, "100.00"), codes=["CAP"]), format="json")
    assert third.json()["error"] == "budget_exhausted"
    assert LimitCounter.objects.get().used == Decimal("50.00")


def test_kill_switch_refuses_the_very_next_request_and_resumes(api, marketer, rule_campaign):
    payload = checkout_json(("Trail shoe", 2, "60.00"), codes=["SHOES10"])
    assert api.post("/api/v1/promotions/validate", payload, format="json").json()["discount_total"] == "12.00"
    response = api.post("/api/v1/promotions/kill-switch", {"on": True, "reason": "pricing bug"}, format="json")
    assert response.status_code == 200
    assert response.json()["kill_switch"] is True
    body = api.post("/api/v1/promotions/validate", payload, format="json").json()
    assert (body["discount_total"], body["skipped"][0]["reason"]) == ("0.00", "kill_switch")
    assert api.post("/api/v1/promotions/redeem", payload, format="json").json()["error"] == "kill_switch"
    api.post("/api/v1/promotions/kill-switch", {"on": False}, format="json")
    assert api.post("/api/v1/promotions/validate", payload, format="json").json()["discount_total"] == "12.00"
    assert list(KillSwitchChange.objects.order_by("pk").values_list("turned_on", "reason", "user_id")) == [
        (True, "pricing bug", marketer.pk),
        (False, "", marketer.pk),
    ]


def test_campaign_switch_pauses_and_resumes(api, rule_campaign):
    payload = checkout_json(("Trail shoe", 2, "60.00"), codes=["SHOES10"])
    api.post(f"/api/v1/promotion-campaigns/{rule_campaign.pk}/switch/", {"on": True, "reason": "stop"}, format="json")
    assert (
        api.post("/api/v1/promotions/validate", payload, format="json").json()["skipped"][0]["reason"]
        == "campaign_paused"
    )
    api.post(f"/api/v1/promotion-campaigns/{rule_campaign.pk}/switch/", {"on": False}, format="json")
    assert api.post("/api/v1/promotions/validate", payload, format="json").json()["discount_total"] == "12.00"


def test_create_campaign_generate_and_publish_codes(api):
    response = api.post(
        "/api/v1/promotion-campaigns/",
        {
            "name": "Welcome",
            "status": "active",
            "incentives": [{"kind": "fixed_order", "amount": "5.00"}],
            "limits": [{"measure": "redemptions", "limit": "100"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    campaign_id = response.json()["id"]
    generated = api.post(
        f"/api/v1/promotion-campaigns/{campaign_id}/generate-codes/",
        {"pattern": "WEL-####-??", "count": 300},
        format="json",
    )
    assert generated.status_code == 201, generated.json()
    assert generated.json()["generated"] == 300
    codes = list(Code.objects.filter(campaign_id=campaign_id).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 300
    assert all(len(code) == 11 and code.startswith("WEL-") for code in codes)


def test_qualify_lists_published_codes_and_automatic_promotions_best_first(api):
    customer = CustomerFactory()
    campaign = campaign_with("Mine", incentives=[{"kind": "fixed_order", "amount": Decimal("7.00")}])
    services.codes_generate(campaign=campaign, pattern="M-####", count=3)
    code = services.code_publish(campaign=campaign, customer=customer)
    campaign_with("Auto", automatic=True, incentives=[{"kind": "percent_order", "percent": Decimal("5")}])
    body = api.post(
        "/api/v1/promotions/qualify", checkout_json(("X", 1, "100.00"), customer_id=customer.pk), format="json"
    ).json()
    assert [(option["name"], option["code"], option["discount"]) for option in body["options"]] == [
        ("Mine", code.code, "7.00"),
        ("Auto", None, "5.00"),
    ]
    assert body["best"]["discount_total"] == "12.00"


def test_a_shop_backend_token_with_the_integration_role_validates_and_redeems_but_cannot_set_up(rule_campaign):
    # Given the shop's checkout: a user in the integration role with an ingest + campaigns token
    from django.contrib.auth.models import Group

    from apps.platform.services import api_token_create

    user = UserFactory(username="shop", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    _, raw = api_token_create(user=user, scopes=["ingest", "campaigns"], name="checkout")
    shop = APIClient()
    shop.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    payload = checkout_json(("Trail shoe", 2, "60.00"), codes=["SHOES10"], order_ref="o-7")

    # When it validates and redeems the code, then tries to create a campaign and flip the kill switch
    validated = shop.post("/api/v1/promotions/validate", payload, format="json")
    redeemed = shop.post("/api/v1/promotions/redeem", payload, format="json", HTTP_IDEMPOTENCY_KEY="shop-1")
    created = shop.post("/api/v1/promotion-campaigns/", {"name": "Mine", "type": "discount_codes"}, format="json")
    killed = shop.post("/api/v1/promotions/kill-switch", {"on": True, "reason": "x"}, format="json")

    # Then the checkout calls work and the set-up calls are refused, with nothing written
    assert validated.status_code == 200, validated.json()
    assert validated.json()["discount_total"] == "12.00"
    assert redeemed.status_code == 201, redeemed.json()
    assert Redemption.objects.filter(status="redeemed").count() == 1
    assert (created.status_code, killed.status_code) == (403, 403)
    assert list(Campaign.objects.values_list("name", flat=True)) == ["Shoes 10"]
    assert KillSwitchChange.objects.count() == 0


def test_a_campaign_holdout_keeps_a_stable_share_of_customers_out_and_redeems_nothing_for_them(api):
    from loyalty_site.lib.split import campaign_holdout_salt, held_out

    campaign = campaign_with(
        "Held", automatic=True, holdout_percent=30, incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}]
    )
    people = [CustomerFactory() for _ in range(40)]
    expected = {person.pk for person in people if held_out(campaign_holdout_salt(campaign.pk), person.pk, 30)}
    assert 0 < len(expected) < 40  # a share, not everyone or no one (30 % of 40, stable per id)

    refused = set()
    for person in people:
        body = api.post(
            "/api/v1/promotions/validate", checkout_json(("X", 1, "20.00"), customer_id=person.pk), format="json"
        )
        skipped = body.json()["skipped"]
        if skipped:
            assert (skipped[0]["reason"], skipped[0]["path"]) == ("held_out", "customer")
            refused.add(person.pk)
    assert refused == expected
    # the same customer is held out again (stable), and a redeem for them applies nothing and records nothing
    kept_out = next(iter(expected))
    again = api.post("/api/v1/promotions/redeem", checkout_json(("X", 1, "20.00"), customer_id=kept_out), format="json")
    assert (again.status_code, again.json()["error"]) == (400, "held_out")
    assert Redemption.objects.filter(customer_id=kept_out).count() == 0


def test_the_holdout_share_is_validated_with_its_path_and_creates_nothing(api):
    before = Campaign.objects.count()

    response = api.post("/api/v1/promotion-campaigns/", {"name": "Capped", "holdout_percent": 60}, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["holdout_percent"]
    assert Campaign.objects.count() == before
