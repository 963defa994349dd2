import pytest
from rest_framework.test import APIClient

from apps.loyalty import services
from apps.loyalty.models import Balance, LedgerEntry, PointLot, Redemption, Reward
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(UserFactory())
    return client


@pytest.fixture
def member():
    program = program_make()
    membership, _ = services.member_join(customer=CustomerFactory(), program=program)
    return membership


def test_award_requires_a_reason_and_replays_with_the_same_idempotency_key(api, member):
    url = f"/api/v1/loyalty/customers/{member.customer_id}/award/"

    missing = api.post(url, {"points": 10}, format="json")
    first = api.post(url, {"points": 10, "reason": "Goodwill"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(url, {"points": 10, "reason": "Goodwill"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert missing.status_code == 400
    assert missing.json()["errors"][0]["path"] == "reason"
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["balance"]["active"] == 10
    assert again.json()["balance"]["active"] == 10
    assert PointLot.objects.count() == 1
    entry = LedgerEntry.objects.get()
    assert (entry.reason, entry.actor_id, entry.cause) == (
        "Goodwill",
        api.handler._force_user.pk,
        f"api:{entry.actor_id}",
    )


def test_deduct_beyond_balance_is_a_400_with_a_path_and_changes_nothing(api, member):
    services.points_award(membership=member, points=5, reason="seed")
    response = api.post(
        f"/api/v1/loyalty/customers/{member.customer_id}/deduct/", {"points": 6, "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "insufficient_points"
    assert response.json()["errors"][0]["path"] == "points"
    assert Balance.objects.get(pk=member.pk).active == 5


def test_validate_redeem_use_and_rollback_through_the_api(api, member):
    services.points_award(membership=member, points=100, reason="seed")
    reward = Reward.objects.create(
        program=member.program, name="10%", kind="percentage_discount", value=10, points_cost=80
    )
    base = f"/api/v1/loyalty/customers/{member.customer_id}"

    valid = api.post(f"{base}/validate/", {"reward": reward.pk}, format="json")
    redeemed = api.post(f"{base}/redeem/", {"reward": reward.pk}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    replay = api.post(f"{base}/redeem/", {"reward": reward.pk}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    refused = api.post(f"{base}/validate/", {"reward": reward.pk}, format="json")

    assert valid.json() == {"valid": True, "points_cost": 80}
    assert redeemed.status_code == 201
    assert replay.json()["code"] == redeemed.json()["code"]
    assert replay["Idempotent-Replayed"] == "true"
    assert Redemption.objects.count() == 1
    assert refused.status_code == 400
    assert refused.json()["error"] == "insufficient_points"

    code = redeemed.json()["code"]
    used = api.post("/api/v1/loyalty/redemptions/use/", {"code": f"LOYALTY:{code}", "channel": "store"}, format="json")
    twice = api.post("/api/v1/loyalty/redemptions/use/", {"code": code}, format="json")
    rolled = api.post(
        f"/api/v1/loyalty/redemptions/{redeemed.json()['id']}/rollback/", {"reason": "returned"}, format="json"
    )

    assert used.json()["status"] == "used"
    assert (twice.status_code, twice.json()["error"]) == (409, "code_used")
    assert rolled.json()["status"] == "rolled_back"
    assert Balance.objects.get(pk=member.pk).active == 100


def test_member_summary_and_paginated_ledger_with_pinned_queries(api, member, django_assert_num_queries):
    for index in range(3):
        services.points_award(membership=member, points=10, reason=f"r{index}")

    summary = api.get(f"/api/v1/loyalty/customers/{member.customer_id}/")
    with django_assert_num_queries(4):  # program, membership, count, page (with lot/actor/reward joined)
        ledger = api.get(f"/api/v1/loyalty/customers/{member.customer_id}/ledger/?page_size=2")

    assert summary.json()["balance"]["active"] == 30
    assert summary.json()["referral_code"] == member.referral_code
    assert ledger.json()["count"] == 3
    assert [row["reason"] for row in ledger.json()["results"]] == ["r2", "r1"]


def test_program_crud_is_for_staff_only(member):
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=False, is_superuser=False))
    assert client.get("/api/v1/loyalty/programs/").status_code == 403
    staff = APIClient()
    staff.force_authenticate(UserFactory())
    created = staff.post(
        "/api/v1/loyalty/rewards/",
        {"program": member.program_id, "name": "Ship", "kind": "free_shipping", "points_cost": 50},
        format="json",
    )
    assert created.status_code == 201
    assert Reward.objects.get().name == "Ship"


def test_referral_registration_through_the_api(api):
    program = program_make(referrer_bonus=20, referee_bonus=10)
    referrer, _ = services.member_join(customer=CustomerFactory(), program=program)
    referee = CustomerFactory()

    created = api.post(
        "/api/v1/loyalty/referrals/", {"referee": referee.pk, "code": referrer.referral_code}, format="json"
    )
    self_ref = api.post(
        "/api/v1/loyalty/referrals/", {"referee": referrer.customer_id, "code": referrer.referral_code}, format="json"
    )
    listed = api.get(f"/api/v1/loyalty/customers/{referrer.customer_id}/referrals/")

    assert created.status_code == 201
    assert created.json()["status"] == "rewarded"
    assert self_ref.json()["error"] == "self_referral"
    assert [row["referee"] for row in listed.json()] == [referee.pk]


def test_available_rewards_show_the_member_price_with_pinned_queries(api, member, django_assert_num_queries):
    from apps.loyalty.models import RewardTierPrice, Tier

    gold = Tier.objects.create(program=member.program, name="Gold", rank=2, threshold=0)
    services.tier_set(membership=member, tier=gold)
    cheap = Reward.objects.create(program=member.program, name="Mug", kind="material_prize", points_cost=100)
    RewardTierPrice.objects.create(reward=cheap, tier=gold, points_cost=70)
    for index in range(3):
        Reward.objects.create(program=member.program, name=f"R{index}", kind="free_shipping", points_cost=200 + index)

    # program, membership, rewards, the member's tier prices, tier targeting: no query per reward
    with django_assert_num_queries(5):
        response = api.get(f"/api/v1/loyalty/customers/{member.customer_id}/rewards/")

    assert [(row["name"], row["member_price"]) for row in response.json()] == [
        ("Mug", 70),
        ("R0", 200),
        ("R1", 201),
        ("R2", 202),
    ]
