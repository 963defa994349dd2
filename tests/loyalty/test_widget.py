"""The storefront widget: scoped token issue, tampered / expired / revoked tokens, CORS, redeem with confirmation."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from apps.customers.services import customer_status_set
from apps.loyalty import services
from apps.loyalty.models import Balance, Redemption, Reward, Tier
from apps.loyalty.widget.tokens import widget_token
from apps.platform.services import api_token_create
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db
SHOP = "https://shop.example.com"


@pytest.fixture(autouse=True)
def shop_origin(settings):
    settings.LOYALTY_WIDGET_ALLOWED_ORIGINS = [SHOP]


@pytest.fixture
def member():
    program = program_make(name="Coffee Club")
    Tier.objects.create(program=program, name="Silver", rank=1, threshold=0)
    Tier.objects.create(program=program, name="Gold", rank=2, threshold=500)
    customer = CustomerFactory(first_name="Ada", email="ada@example.com", external_id="shop-7")
    membership, _ = services.member_join(customer=customer, program=program)
    services.points_award(membership=membership, points=300, reason="welcome")
    return membership


@pytest.fixture
def espresso(member):
    return Reward.objects.create(program=member.program, name="Espresso", kind="free_product", points_cost=120)


def _shop_backend(scopes: list[str], role: str = "integration") -> APIClient:
    user = UserFactory(username=f"shop-{role}-{'-'.join(scopes)}", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    _, raw = api_token_create(user=user, scopes=scopes, name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _widget(client, path: str, token: str, *, origin: str = SHOP, method: str = "get", body: str | None = None):
    headers = {"HTTP_ORIGIN": origin, "HTTP_X_LOYALTY_WIDGET_TOKEN": token}
    if method == "post":
        return client.post(f"/w/api/{path}", body or "{}", content_type="application/json", **headers)
    return client.get(f"/w/api/{path}", **headers)


def test_the_shop_backend_gets_a_short_lived_token_and_the_widget_shows_the_member(client, member, espresso):
    issued = _shop_backend(["widget"]).post(
        "/api/v1/loyalty/widget-tokens/", {"customer_external_id": "shop-7"}, format="json"
    )
    assert issued.status_code == 201, issued.json()
    assert issued.json()["expires_in"] == 900

    state = _widget(client, "state/", issued.json()["token"])

    assert state.status_code == 200
    assert state["Access-Control-Allow-Origin"] == SHOP and state["Vary"] == "Origin, Accept-Language"
    body = state.json()
    assert (body["program"], body["balance"], body["tier"], body["next_tier"]) == (
        "Coffee Club",
        {"active": 300, "pending": 0},
        "Silver",
        "Gold",
    )
    assert body["tier_progress"] == {
        "percent": 60,
        "remaining": "200.00",
        "basis": "points_earned",
        "remaining_label": "200 points",
    }
    assert body["rewards"] == [
        {"id": espresso.pk, "name": "Espresso", "description": "", "points": 120, "affordable": True}
    ]
    assert body["referral_link"].endswith(f"/me/r/{member.referral_code}/")


def test_token_issue_needs_the_widget_scope_and_the_permission_and_refuses_non_members(member):
    analyst = _shop_backend(["widget"], role="analyst")
    ingest_only = _shop_backend(["ingest"])
    shop = _shop_backend(["widget"])
    stranger = CustomerFactory(external_id="shop-8")

    refused = [
        analyst.post("/api/v1/loyalty/widget-tokens/", {"customer_id": member.customer_id}, format="json"),
        ingest_only.post("/api/v1/loyalty/widget-tokens/", {"customer_id": member.customer_id}, format="json"),
    ]
    not_member = shop.post("/api/v1/loyalty/widget-tokens/", {"customer_external_id": "shop-8"}, format="json")
    both = shop.post("/api/v1/loyalty/widget-tokens/", {"customer_id": 1, "customer_external_id": "x"}, format="json")
    joined = shop.post(
        "/api/v1/loyalty/widget-tokens/", {"customer_external_id": "shop-8", "join": True}, format="json"
    )

    assert [answer.status_code for answer in refused] == [403, 403]
    assert refused[0].json()["message"] == "Missing permission: loyalty.issue_widget_token."
    assert refused[1].json()["error"] == "missing_scope"
    assert (not_member.status_code, not_member.json()["errors"][0]["path"]) == (400, "customer_external_id")
    assert (both.status_code, both.json()["errors"][0]["path"]) == (400, "customer")
    assert joined.status_code == 201 and stranger.loyalty_memberships.count() == 1


def test_tampered_expired_and_revoked_tokens_are_refused(client, member):
    token, _ = widget_token(member)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    assert _widget(client, "state/", tampered).status_code == 401
    assert _widget(client, "state/", "").status_code == 401
    assert _widget(client, "state/", "x" * 5000).status_code == 401
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        expired = _widget(client, "state/", token)
    assert (expired.status_code, expired.json()["error"]) == (401, "invalid_token")
    services.cockpit_links_revoke(membership=member)
    assert _widget(client, "state/", token).status_code == 401


def test_cors_answers_configured_shop_origins_only(client, member):
    token, _ = widget_token(member)
    preflight = client.options("/w/api/redeem/", HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    foreign_preflight = client.options("/w/api/redeem/", HTTP_ORIGIN="https://evil.example")
    foreign = _widget(client, "state/", token, origin="https://evil.example")

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == SHOP
    assert "X-Loyalty-Widget-Token" in preflight["Access-Control-Allow-Headers"]
    assert foreign_preflight.status_code == 403 and "Access-Control-Allow-Origin" not in foreign_preflight
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign
    assert foreign.json()["error"] == "origin_not_allowed"


def test_redeeming_needs_the_confirmation_and_issues_one_code(client, member, espresso):
    token, _ = widget_token(member)

    unconfirmed = _widget(client, "redeem/", token, method="post", body=f'{{"reward": {espresso.pk}}}')
    bad = _widget(client, "redeem/", token, method="post", body='{"reward": "1; drop"}')
    not_json = _widget(client, "redeem/", token, method="post", body="{")
    redeemed = _widget(client, "redeem/", token, method="post", body=f'{{"reward": {espresso.pk}, "confirm": true}}')

    assert (unconfirmed.status_code, unconfirmed.json()["errors"][0]["path"]) == (400, "confirm")
    assert (bad.status_code, bad.json()["errors"][0]["path"]) == (400, "reward")
    assert (not_json.status_code, not_json.json()["errors"][0]["path"]) == (400, "body")
    assert redeemed.status_code == 201
    assert redeemed.json()["code"] == Redemption.objects.get().code
    assert redeemed.json()["balance"] == {"active": 180, "pending": 0}
    assert redeemed["Access-Control-Allow-Origin"] == SHOP


def test_a_blocked_customer_cannot_redeem_through_the_widget_and_nothing_changes(client, member, espresso):
    token, _ = widget_token(member)
    customer_status_set(customer=member.customer, status="blocked", reason="chargebacks")

    answer = _widget(client, "redeem/", token, method="post", body=f'{{"reward": {espresso.pk}, "confirm": true}}')

    assert (answer.status_code, answer.json()["error"]) == (403, "customer_blocked")
    assert Redemption.objects.count() == 0
    assert Balance.objects.get(pk=member.pk).active == 300
    assert _widget(client, "state/", token).json()["blocked"] is True


def test_the_state_takes_a_fixed_number_of_queries(client, member, django_assert_num_queries):
    for index in range(15):
        Reward.objects.create(program=member.program, name=f"R{index}", kind="free_product", points_cost=10 + index)
    token, _ = widget_token(member)

    # 7 for the member, balance, tiers and rewards whatever their number, plus 1 for the Brand it is painted with
    with django_assert_num_queries(8):
        answer = _widget(client, "state/", token)
    assert len(answer.json()["rewards"]) == 15
