import pytest
from rest_framework.test import APIClient

from apps.platform.services import api_token_create
from tests.factories import UserFactory


@pytest.fixture
def integrator(db):
    return UserFactory(username="integrator", is_staff=False, is_superuser=False)


@pytest.fixture
def api(integrator) -> APIClient:
    """An API client authenticated without extra queries (query counts stay about the endpoint)."""
    client = APIClient()
    client.force_authenticate(integrator)
    return client


@pytest.fixture
def bearer(integrator):
    """(client, raw token) using a real `Authorization: Bearer` header."""
    token, raw = api_token_create(user=integrator, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token
