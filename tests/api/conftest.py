import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.platform.services import api_token_create
from tests.factories import UserFactory


@pytest.fixture
def integrator(db):
    """A shop backend's API user: not staff, in the `integration` role (data plane read/write, loyalty read)."""
    user = UserFactory(username="integrator", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    user.get_all_permissions()  # loaded once, so query counts stay about the endpoint
    return user


@pytest.fixture
def api(integrator) -> APIClient:
    """An API client authenticated without extra queries (query counts stay about the endpoint)."""
    client = APIClient()
    client.force_authenticate(integrator)
    return client


@pytest.fixture
def bearer(integrator):
    """(client, raw token) using a real `Authorization: Bearer` header (scope `ingest`)."""
    token, raw = api_token_create(user=integrator, name="test", scopes=["ingest"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token
