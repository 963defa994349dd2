import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def api(db) -> APIClient:
    """An integrator's API client (not staff)."""
    client = APIClient()
    client.force_authenticate(UserFactory(username="integrator", is_staff=False, is_superuser=False))
    return client
