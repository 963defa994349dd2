"""GET /api/v1/: an index of what the caller may reach, filtered by its permissions and its token's scopes."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.platform.services import api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def index(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200, response.content
    return {item["name"]: (item["read"], item["write"]) for item in response.json()["resources"]}


def role_user(role):
    user = UserFactory(username=f"api-{role}", is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    return user


def test_anonymous_callers_get_the_json_401_and_no_list():
    response = APIClient().get("/api/v1/")
    assert response.status_code in (401, 403)
    assert "resources" not in response.json()


def test_a_session_sees_what_its_role_may_read_and_write():
    client = APIClient()
    client.force_authenticate(role_user("analyst"))

    resources = index(client)

    assert resources["customers"] == (True, False)
    assert resources["segments"] == (True, False)
    assert resources["workflows"] == (True, False)


def test_a_marketer_may_write_segments_and_workflows_but_not_orders():
    client = APIClient()
    client.force_authenticate(role_user("marketer"))

    resources = index(client)

    assert resources["segments"] == (True, True)
    assert resources["workflows"] == (True, True)
    assert resources["orders"] == (True, False)


def test_a_token_lists_only_what_its_scopes_reach():
    user = role_user("integration")
    _token, raw = api_token_create(user=user, name="shop", scopes=["ingest"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    resources = index(client)

    assert resources["orders"] == (True, True)
    assert "workflows" not in resources
    assert "segments" not in resources
