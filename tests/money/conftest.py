import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def api(db) -> APIClient:
    """An integrator's API client (not staff; the `integration` role)."""
    user = UserFactory(username="integrator", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    client = APIClient()
    client.force_authenticate(user)
    return client
