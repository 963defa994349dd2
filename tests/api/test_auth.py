from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.platform.authentication import token_digest
from apps.platform.models import ApiToken
from apps.platform.services import api_token_revoke

pytestmark = pytest.mark.django_db


def test_a_valid_bearer_token_authenticates_and_records_its_last_use(bearer):
    client, token = bearer

    with time_machine.travel(datetime(2026, 5, 1, 12, 0, tzinfo=UTC), tick=False):
        response = client.get("/api/v1/customers/")

    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_a_revoked_token_is_refused_with_401_json(bearer):
    client, token = bearer
    api_token_revoke(token=token)

    response = client.get("/api/v1/customers/")

    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "message": "Invalid or revoked token.", "errors": []}


def test_a_missing_token_is_refused_with_401(db):
    response = APIClient().get("/api/v1/orders/")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_malformed_header_is_refused(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")

    assert client.get("/api/v1/orders/").status_code == 401


def test_create_api_token_prints_the_token_on_its_last_line_and_stores_only_its_digest(capsys):
    call_command(
        "create_api_token",
        "shop",
        "--create-user",
        "--name",
        "shop backend",
        "--scope",
        "ingest",
        "--role",
        "integration",
    )

    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get()
    assert raw.startswith("lsk_")
    assert token.digest == token_digest(raw)
    assert raw not in (token.digest, token.prefix)
    assert (token.name, token.user.username, token.user.has_usable_password()) == ("shop backend", "shop", False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/tags/").status_code == 200


def test_create_api_token_for_an_unknown_user_without_create_user_fails_and_writes_nothing():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--create-user"):
        call_command("create_api_token", "nobody")

    assert ApiToken.objects.count() == 0


def test_writes_record_which_token_made_them(bearer, integrator):
    from apps.customers.models import DomainEvent
    from apps.tagging.models import CustomerTag

    client, token = bearer

    created = client.post("/api/v1/customers/", {"external_id": "c-1"}, format="json")
    client.post(f"/api/v1/customers/{created.json()['id']}/add_tags/", {"tags": ["VIP"]}, format="json")

    assert DomainEvent.objects.get(name="customer.registered").cause == f"api:token:{token.pk}"
    assert DomainEvent.objects.get(name="customer.tag_added").cause == f"api:token:{token.pk}"
    assert CustomerTag.objects.get().source_ref == f"api:token:{token.pk}"


def test_session_writes_record_the_user(api, integrator):
    from apps.customers.models import DomainEvent

    api.post("/api/v1/customers/", {"external_id": "c-1"}, format="json")

    assert DomainEvent.objects.get().cause == f"api:user:{integrator.pk}"
