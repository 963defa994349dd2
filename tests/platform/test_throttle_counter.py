"""
The API throttles count with a sliding-window counter (apps/platform/throttling.py): O(1) per request, the same
rates, 429 with Retry-After, a refused request not counted, and no burst of twice the rate across a window edge.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import RequestFactory, override_settings
from rest_framework.request import Request
from rest_framework.test import APIClient

from apps.platform.services import api_token_create
from apps.platform.throttling import IPRateThrottle
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cache_cleared")]

# 10 s into a minute window (windows are aligned on the epoch).
START = datetime(2026, 12, 1, 13, 0, 10, tzinfo=UTC)


def rates(**rates):
    return override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"token": None, "ip": None, "auth_failure": None, **rates},
        }
    )


def anonymous(address="198.51.100.7"):
    return Request(RequestFactory().get("/api/v1/customers/", REMOTE_ADDR=address))


def allowed(request) -> bool:
    return IPRateThrottle().allow_request(request, None)


def test_the_rate_is_kept_and_refused_requests_do_not_count():
    request = anonymous()
    with rates(ip="5/min"), time_machine.travel(START, tick=False) as clock:
        answers = [allowed(request) for _ in range(8)]
        throttle = IPRateThrottle()
        refused = throttle.allow_request(request, None)
        wait = throttle.wait()
        clock.shift(timedelta(seconds=60))  # 10 s into the next window the 5 still weigh 5 * 50/60: no room
        still = allowed(request)
        clock.shift(timedelta(seconds=50))  # a window later: the previous one (refused only) counted nothing
        again = [allowed(request) for _ in range(6)]

    assert answers == [True] * 5 + [False] * 3
    assert refused is False
    assert wait == 50 + 12  # the rest of this window, then until the 5 weigh 4 (12 s of the next)
    assert still is False
    assert again == [True] * 5 + [False]


def test_a_burst_at_a_window_edge_is_not_let_through_twice():
    request = anonymous()
    with rates(ip="10/min"), time_machine.travel(START + timedelta(seconds=49), tick=False) as clock:  # :59
        first = [allowed(request) for _ in range(10)]
        clock.shift(timedelta(seconds=2))  # :01 of the next window
        second = [allowed(request) for _ in range(10)]
        clock.shift(timedelta(seconds=30))  # :31: the 10 weigh 10 * 29/60 = 4.8
        third = [allowed(request) for _ in range(10)]

    assert first == [True] * 10
    assert second == [False] * 10
    assert third == [True] * 5 + [False] * 5


def test_each_address_has_its_own_count_and_the_cache_holds_two_integers():
    with rates(ip="3/min"), time_machine.travel(START, tick=False):
        one = [allowed(anonymous("198.51.100.1")) for _ in range(4)]
        two = [allowed(anonymous("198.51.100.2")) for _ in range(4)]
        window = int(START.timestamp()) // 60
        counts = cache.get_many([f"throttle_ip_198.51.100.1:{window}", f"throttle_ip_198.51.100.2:{window}"])

    assert (one, two) == ([True] * 3 + [False], [True] * 3 + [False])
    assert list(counts.values()) == [3, 3]


def test_a_token_over_its_rate_gets_429_with_retry_after_and_its_write_is_not_made():
    from apps.customers.models import Customer

    user = UserFactory(username="shop", is_staff=False, is_superuser=False)
    user.groups.add(Group.objects.get(name="integration"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, scopes=['ingest'])[1]}")
    with rates(token="3/min"), time_machine.travel(START, tick=False):
        answers = [client.post("/api/v1/customers/", {"external_id": f"t-{n}"}) for n in range(4)]

    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]
    assert answers[3].json()["error"] == "throttled"
    assert answers[3]["Retry-After"] == "70"  # 50 s of this window, then 20 s until the 3 weigh 2
    assert Customer.objects.count() == 3
