"""Scoped tokens: a request outside the token's scopes is 403 naming the missing scope and changes nothing;
a token acts with the intersection of its scopes and its user's permissions; expiry and revocation."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.automations.models import Workflow
from apps.campaigns.models import Segment
from apps.customers.models import Customer
from apps.loyalty import services as loyalty_services
from apps.loyalty.models import LedgerEntry, Program
from apps.platform.authentication import token_digest
from apps.platform.models import ApiToken
from apps.platform.services import api_token_create, api_token_revoke
from tests.automations.test_engine_support import add_tags, definition
from tests.factories import CustomerFactory, UserFactory
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db


def token_client(*scopes: str, role: str = "admin", **extra) -> APIClient:
    user = UserFactory(username=f"u-{'-'.join(scopes)}-{role}", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    _, raw = api_token_create(user=user, name="t", scopes=list(scopes), **extra)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def member():
    membership, _ = loyalty_services.member_join(customer=CustomerFactory(), program=program_make())
    return membership


# (scope, request it allows, request it does not allow, the scope the refusal names)
def _requests(member) -> dict[str, tuple]:
    customer = member.customer_id
    return {
        "ingest": (
            ("post", "/api/v1/customers/", {"external_id": "s-1"}),
            ("post", f"/api/v1/loyalty/customers/{customer}/award/", {"points": 5, "reason": "x"}),
            "loyalty:write",
        ),
        "loyalty:read": (
            ("get", f"/api/v1/loyalty/customers/{customer}/", None),
            ("post", f"/api/v1/loyalty/customers/{customer}/award/", {"points": 5, "reason": "x"}),
            "loyalty:write",
        ),
        "loyalty:write": (
            ("post", f"/api/v1/loyalty/customers/{customer}/award/", {"points": 5, "reason": "x"}),
            ("post", "/api/v1/customers/", {"external_id": "s-1"}),
            "ingest",
        ),
        "workflows": (
            ("post", "/api/v1/workflows/", {"name": "W", "definition": definition("order.created", [add_tags("A")])}),
            ("post", "/api/v1/segments/", {"name": "S", "condition": None}),
            "campaigns",
        ),
        "campaigns": (
            ("post", "/api/v1/segments/", {"name": "S", "condition": None}),
            ("post", "/api/v1/workflows/", {"name": "W", "definition": definition("order.created", [add_tags("A")])}),
            "workflows",
        ),
        "reports": (
            ("get", "/api/v1/customers/", None),
            ("post", "/api/v1/customers/", {"external_id": "s-1"}),
            "ingest",
        ),
    }


def _fingerprint() -> tuple:
    return (
        Customer.objects.count(),
        LedgerEntry.objects.count(),
        Workflow.objects.count(),
        Segment.objects.count(),
        Program.objects.count(),
    )


@pytest.mark.parametrize("scope", ["ingest", "loyalty:read", "loyalty:write", "workflows", "campaigns", "reports"])
def test_each_scope_allows_its_family_and_refuses_another_naming_the_missing_scope(scope, member):
    allowed, refused, missing = _requests(member)[scope]
    client = token_client(scope)

    ok = getattr(client, allowed[0])(allowed[1], allowed[2], format="json")
    before = _fingerprint()
    denied = getattr(client, refused[0])(refused[1], refused[2], format="json")

    assert 200 <= ok.status_code < 300, ok.content
    assert denied.status_code == 403
    assert denied.json()["error"] == "missing_scope"
    assert f"`{missing}`" in denied.json()["message"]
    assert _fingerprint() == before


def test_the_admin_scope_reaches_every_family(member):
    client = token_client("admin")

    assert client.post("/api/v1/customers/", {"external_id": "a-1"}, format="json").status_code == 201
    assert client.get("/api/v1/workflows/").status_code == 200
    assert client.get("/api/v1/segments/").status_code == 200
    award = f"/api/v1/loyalty/customers/{member.customer_id}/award/"
    assert client.post(award, {"points": 5, "reason": "x"}, format="json").status_code == 201


def test_a_token_acts_with_the_intersection_of_its_scopes_and_its_users_permissions(member):
    # an analyst's token with every scope still cannot write: the role has no write permission
    client = token_client("admin", role="analyst")
    before = _fingerprint()

    read = client.get("/api/v1/customers/")
    write = client.post(f"/api/v1/loyalty/customers/{member.customer_id}/award/", {"points": 9, "reason": "x"})

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json() == {
        "error": "permission_denied",
        "message": "Missing permission: platform.award_points.",
        "errors": [],
    }
    assert _fingerprint() == before


def test_an_expired_token_is_refused_and_a_live_one_works_until_its_expiry():
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        client = token_client("reports", expires_at=start + timedelta(days=2))
        assert client.get("/api/v1/customers/").status_code == 200
    with time_machine.travel(start + timedelta(days=2, seconds=1), tick=False):
        expired = client.get("/api/v1/customers/")

    assert expired.status_code == 401
    assert expired.json() == {"error": "authentication_failed", "message": "This token has expired.", "errors": []}


def test_a_revoked_token_is_refused():
    user = UserFactory(username="rev", is_superuser=False)
    user.groups.add(Group.objects.get(name="admin"))
    token, raw = api_token_create(user=user, scopes=["reports"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/customers/").status_code == 200

    api_token_revoke(token=token)

    assert client.get("/api/v1/customers/").status_code == 401


def test_last_use_time_and_ip_are_written_at_most_once_a_minute():
    user = UserFactory(username="hot", is_superuser=False)
    user.groups.add(Group.objects.get(name="admin"))
    token, raw = api_token_create(user=user, scopes=["reports"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    with time_machine.travel(start, tick=False):
        client.get("/api/v1/tags/", REMOTE_ADDR="203.0.113.7")
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/v1/tags/", REMOTE_ADDR="203.0.113.8")
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (start, "203.0.113.7")

    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/v1/tags/", REMOTE_ADDR="203.0.113.8")
    token.refresh_from_db()
    assert (token.last_used_at, token.last_used_ip) == (start + timedelta(seconds=61), "203.0.113.8")


def test_create_api_token_with_scopes_and_expiry_prints_the_token_once(capsys):
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        call_command(
            "create_api_token",
            "pos",
            "--create-user",
            "--role",
            "support",
            "--scope",
            "ingest",
            "--scope",
            "loyalty:read",
            "--expires-in-days",
            "30",
        )

    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get()
    assert token.digest == token_digest(raw)
    assert (token.scopes, token.expires_at) == (["ingest", "loyalty:read"], start + timedelta(days=30))
    assert list(token.user.groups.values_list("name", flat=True)) == ["support"]


def test_create_api_token_needs_a_scope_and_refuses_unknown_ones():
    UserFactory(username="shop")

    with pytest.raises(CommandError, match="--scope"):
        call_command("create_api_token", "shop")
    with pytest.raises(CommandError):
        call_command("create_api_token", "shop", "--scope", "everything")
    with pytest.raises(ValidationError):
        api_token_create(user=UserFactory(username="x"), scopes=["root"])

    assert ApiToken.objects.count() == 0
