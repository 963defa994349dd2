"""
API tokens, their users and permissions are cached per process (apps/platform/authentication.py): a second
request reads none of them, and every change that can alter the answer is seen by the next request.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from apps.customers.models import CustomerEvent, DomainEvent
from apps.platform import authentication
from apps.platform.models import ApiToken
from apps.platform.services import api_token_create, api_token_revoke
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

AUTH_TABLES = ("platform_apitoken", "auth_permission", "auth_user")


def _auth_reads(client, method: str = "get", path: str = "/api/v1/tags/", **kwargs) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, **kwargs)
    reads = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and any(table in q["sql"] for table in AUTH_TABLES)
    ]
    return response.status_code, reads


def _post_event(client, external_id: str = "c1"):
    return client.post("/api/v1/events/", {"customer_external_id": external_id, "name": "visit"}, format="json")


def test_the_first_request_reads_the_token_and_permissions_and_the_second_reads_none(bearer):
    client, _ = bearer

    first_status, first_reads = _auth_reads(client)
    second_status, second_reads = _auth_reads(client)

    assert (first_status, second_status) == (200, 200)
    # the token with its user, the user's permissions, the group's permissions
    assert len(first_reads) == 3, "\n".join(first_reads)
    assert second_reads == []


def test_with_the_cache_off_every_request_reads_the_token_and_permissions(bearer):
    client, _ = bearer

    with override_settings(API_AUTH_CACHE_SECONDS=0):
        _auth_reads(client)
        status, reads = _auth_reads(client)

    assert status == 200
    assert len(reads) == 3


def test_a_token_revoked_after_it_was_cached_is_refused_at_once(bearer):
    client, token = bearer
    assert client.get("/api/v1/tags/").status_code == 200

    api_token_revoke(token=token)
    response = client.get("/api/v1/tags/")

    assert response.status_code == 401
    assert response.json()["message"] == "Invalid or revoked token."


def test_a_deactivated_user_is_refused_at_once(bearer, integrator):
    client, _ = bearer
    assert client.get("/api/v1/tags/").status_code == 200

    integrator.is_active = False
    integrator.save(update_fields=["is_active"])

    assert client.get("/api/v1/tags/").status_code == 401


def test_a_user_taken_out_of_the_role_is_forbidden_at_once_and_the_refused_post_writes_nothing(bearer, integrator):
    client, _ = bearer
    CustomerFactory(external_id="c1")
    assert _post_event(client).status_code == 201
    before = (CustomerEvent.objects.count(), DomainEvent.objects.count())

    integrator.groups.remove(Group.objects.get(name="integration"))
    response = _post_event(client)

    assert response.status_code == 403
    assert response.json()["message"] == "Missing permission: customers.add_customerevent."
    assert (CustomerEvent.objects.count(), DomainEvent.objects.count()) == before


def test_a_permission_taken_from_the_group_is_forbidden_at_once(bearer):
    client, _ = bearer
    CustomerFactory(external_id="c1")
    assert _post_event(client).status_code == 201
    before = CustomerEvent.objects.count()

    Group.objects.get(name="integration").permissions.remove(Permission.objects.get(codename="add_customerevent"))
    response = _post_event(client)

    assert response.status_code == 403
    assert CustomerEvent.objects.count() == before


def test_a_permission_given_to_the_user_applies_at_once(bearer, integrator):
    client, _ = bearer
    integrator.groups.clear()
    assert client.get("/api/v1/tags/").status_code == 403

    integrator.user_permissions.add(Permission.objects.get(codename="view_tag"))

    assert client.get("/api/v1/tags/").status_code == 200


def test_narrowed_scopes_apply_at_once_and_the_refused_post_writes_nothing(bearer):
    client, token = bearer
    CustomerFactory(external_id="c1")
    assert _post_event(client).status_code == 201

    token.scopes = ["reports"]
    token.save(update_fields=["scopes"])
    response = _post_event(client)

    assert response.status_code == 403
    assert response.json()["error"] == "missing_scope"
    assert CustomerEvent.objects.count() == 1


def test_a_token_that_expires_while_cached_is_refused_from_its_expiry(integrator):
    from rest_framework.test import APIClient

    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        _, raw = api_token_create(user=integrator, scopes=["ingest"], expires_at=start + timedelta(minutes=1))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert client.get("/api/v1/tags/").status_code == 200

    with time_machine.travel(start + timedelta(minutes=1, seconds=1), tick=False):
        response = client.get("/api/v1/tags/")

    assert response.status_code == 401
    assert response.json()["message"] == "This token has expired."


def test_a_change_made_elsewhere_without_a_signal_is_seen_after_the_cache_lifetime(bearer, monkeypatch):
    """Another process with its own memory cache: the row changed, this process heard nothing."""
    client, token = bearer
    now = [1000.0]
    monkeypatch.setattr(authentication, "_clock", lambda: now[0])
    assert client.get("/api/v1/tags/").status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())  # no post_save
    now[0] += 4.9
    within = client.get("/api/v1/tags/").status_code
    now[0] += 0.2
    after = client.get("/api/v1/tags/").status_code

    assert (within, after) == (200, 401)


def test_a_change_announced_through_the_shared_cache_is_seen_at_once(bearer):
    """Another process with a shared cache (Redis): it replaced the generation when it revoked the token."""
    client, token = bearer
    assert client.get("/api/v1/tags/").status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    cache.set(authentication.GENERATION_KEY, "set by another process", timeout=None)

    assert client.get("/api/v1/tags/").status_code == 401


def test_an_evicted_generation_makes_every_entry_read_again(bearer):
    client, token = bearer
    assert client.get("/api/v1/tags/").status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    cache.delete(authentication.GENERATION_KEY)

    assert client.get("/api/v1/tags/").status_code == 401


def test_a_revocation_committed_while_a_request_read_the_old_row_is_not_kept(bearer, monkeypatch):
    """The generation is read before the rows: an entry read around a concurrent change is stale at once."""
    client, token = bearer
    read = authentication._token_read

    def read_then_revoked_elsewhere(digest: str):
        row = read(digest)  # still usable when read
        api_token_revoke(token=ApiToken.objects.get(pk=token.pk))  # committed meanwhile by another request
        return row

    monkeypatch.setattr(authentication, "_token_read", read_then_revoked_elsewhere)
    assert client.get("/api/v1/tags/").status_code == 200  # answered with what it read
    monkeypatch.setattr(authentication, "_token_read", read)

    assert client.get("/api/v1/tags/").status_code == 401


def test_the_last_use_is_written_once_a_minute_while_the_token_is_cached(bearer):
    client, token = bearer
    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    writes = []
    for offset in (0, 30, 59, 61):
        with (
            time_machine.travel(start + timedelta(seconds=offset), tick=False),
            CaptureQueriesContext(connection) as captured,
        ):
            assert client.get("/api/v1/tags/").status_code == 200
        writes += [offset for q in captured.captured_queries if q["sql"].startswith('UPDATE "platform_apitoken"')]

    token.refresh_from_db()
    assert writes == [0, 61]
    assert token.last_used_at == start + timedelta(seconds=61)
