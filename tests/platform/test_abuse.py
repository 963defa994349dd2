"""Login lockout (django-axes) and API throttling (per token, per IP, stricter on failed authentication)."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import override_settings
from rest_framework.test import APIClient

from apps.customers.models import Customer
from apps.platform.services import api_token_create
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cache_cleared")]


def rates(**rates):
    return override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"token": None, "ip": None, "auth_failure": None, **rates},
        }
    )


@pytest.fixture
def staff(db):
    user = UserFactory(username="ops", is_staff=True, is_superuser=True)
    user.set_password("right-pass-123")
    user.save()
    return user


def _login(client, password, **headers):
    return client.post("/admin/login/?next=/admin/", {"username": "ops", "password": password}, **headers)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_wrong_admin_passwords_lock_the_login_even_for_the_right_password(client, staff):
    answers = [_login(client, f"wrong-{n}").status_code for n in range(3)]
    locked = _login(client, "right-pass-123")

    assert answers == [200, 200, 429]  # the form again twice, then the lockout page
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_locked_out_xhr_login_answers_json(client, staff):
    for n in range(3):
        _login(client, f"wrong-{n}")

    locked = _login(client, "right-pass-123", HTTP_X_REQUESTED_WITH="XMLHttpRequest")

    assert locked.status_code == 429
    assert locked.json()["error"] == "locked_out"


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_right_password_before_the_limit_logs_in_and_resets_the_count(client, staff):
    _login(client, "wrong-1")
    _login(client, "wrong-2")
    ok = _login(client, "right-pass-123")
    client.logout()
    again = [_login(client, f"wrong-{n}").status_code for n in range(2)]

    assert ok.status_code == 302
    assert again == [200, 200]


def test_bogus_tokens_are_throttled_per_address_after_the_failure_limit(db):
    client = APIClient()
    with rates(auth_failure="20/min"):
        answers = []
        for n in range(300):
            client.credentials(HTTP_AUTHORIZATION=f"Bearer lsk_bogus{n}")
            answers.append(client.get("/api/v1/customers/").status_code)
        last = client.get("/api/v1/customers/")

    assert answers[:20] == [401] * 20
    assert set(answers[20:]) == {429}
    assert last.json()["error"] == "throttled"
    assert int(last["Retry-After"]) > 0


def test_a_valid_token_from_a_throttled_address_is_also_refused_until_the_window_passes(db):
    user = UserFactory(username="shop", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    _, raw = api_token_create(user=user, scopes=["ingest"])
    client = APIClient()
    with rates(auth_failure="3/min"):
        for n in range(3):
            client.credentials(HTTP_AUTHORIZATION=f"Bearer lsk_guess{n}")
            client.get("/api/v1/customers/")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        refused = client.get("/api/v1/customers/")
        other_address = client.get("/api/v1/customers/", REMOTE_ADDR="198.51.100.9")

    assert refused.status_code == 429
    assert other_address.status_code == 200


def test_requests_are_throttled_per_token(db):
    user = UserFactory(username="shop", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    first = APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, scopes=['ingest'])[1]}")
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, scopes=['ingest'])[1]}")
    with rates(token="5/min"):
        answers = [first.post("/api/v1/customers/", {"external_id": f"t-{n}"}).status_code for n in range(7)]
        other = second.get("/api/v1/customers/")

    assert answers == [201] * 5 + [429] * 2
    assert Customer.objects.count() == 5
    assert other.status_code == 200


def test_session_and_anonymous_requests_are_throttled_per_address(db):
    user = UserFactory(username="analyst", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name="analyst"))
    client = APIClient()
    client.force_authenticate(user)
    with rates(ip="4/min"):
        answers = [client.get("/api/v1/customers/").status_code for _ in range(5)]
        elsewhere = client.get("/api/v1/customers/", REMOTE_ADDR="198.51.100.20")

    assert answers == [200] * 4 + [429]
    assert elsewhere.status_code == 200
