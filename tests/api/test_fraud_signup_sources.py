"""
Issue 17: the real sign-up paths record where a sign-up came from, so the velocity fields see it — the customers
API takes `signup_ip` / `signup_device` from the body (the shop's server calls it), the landing form posts an
optional hidden `device` next to the visitor's IP.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.campaigns.fraud import services
from apps.campaigns.fraud.models import FraudCase, FraudRule
from apps.customers.models import Customer
from tests.campaigns.landing_helpers import form_block, published_page

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cache_cleared")]

IP_A, IP_B = "203.0.113.7", "2001:db8::9"


def _rule(field: str, value: int) -> FraudRule:
    return services.fraud_rule_save(
        name=f"{field} burst",
        trigger="customer.registered",
        condition={"field": field, "window": {"hours": 1}, "op": "gte", "value": value},
        action="flag",
        is_enabled=True,
    )


def _status(pk: int) -> str:
    return Customer.objects.get(pk=pk).status


def test_api_sign_ups_with_a_device_are_counted_and_flag_at_the_threshold(api, sync):
    rule = _rule("fraud.signups_same_device", 2)

    def signup(external_id: str, device: str):
        body = {"external_id": external_id, "email": f"{external_id}@example.com", "signup_device": device}
        return sync(lambda: api.post("/api/v1/customers/", {**body, "signup_ip": IP_A}, format="json"))

    first = signup("c-1", "dev-1")
    other = signup("c-2", "dev-2")
    again = signup("c-1", "dev-2")  # an upsert of a known customer keeps its sign-up facts
    assert (first.status_code, other.status_code, again.status_code) == (201, 201, 200)
    assert not FraudCase.objects.exists()
    second = signup("c-3", "dev-1")

    assert second.status_code == 201
    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id) == (rule.pk, second.json()["id"])
    assert case.evidence[0]["value"] == 2
    assert [_status(r.json()["id"]) for r in (first, other, second)] == ["active", "active", "flagged"]
    stored = Customer.objects.get(pk=first.json()["id"])
    assert (stored.signup_device, stored.signup_ip) == ("dev-1", IP_A)


def test_api_sign_ups_record_the_ip_from_the_body_for_the_ip_fields(api, sync):
    rule = _rule("fraud.signups_same_ip", 2)

    def signup(email: str, ip: str):
        return sync(lambda: api.post("/api/v1/customers/", {"email": email, "signup_ip": ip}, format="json"))

    first = signup("a@example.com", IP_B)
    signup("b@example.com", IP_A)
    assert not FraudCase.objects.exists()
    second = signup("c@example.com", IP_B)

    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id) == (rule.pk, second.json()["id"])
    assert Customer.objects.get(pk=first.json()["id"]).signup_ip == IP_B  # not the caller's REMOTE_ADDR


@pytest.mark.parametrize(
    ("extra", "path"),
    [({"signup_ip": "999.1.1.1"}, "signup_ip"), ({"signup_device": "x" * 65}, "signup_device")],
)
def test_api_bad_sign_up_source_is_a_400_with_the_path_and_writes_nothing(api, extra, path):
    response = api.post("/api/v1/customers/", {"external_id": "c-1", "email": "a@example.com", **extra}, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == [path]
    assert not Customer.objects.exists()


def test_landing_form_sign_ups_with_a_device_are_counted_by_signups_same_device(client, sync):
    published_page(blocks=[form_block(join_program=False, consent_channels=[])])
    rule = _rule("fraud.signups_same_device", 2)

    def submit(email: str, device: str):
        html = client.get("/p/newsletter/").content.decode()
        assert 'name="device"' in html  # the hidden input a page's script fills
        started = re.search(r'name="started" value="([^"]+)"', html).group(1)
        fields = {"started": started, "website": "", "email": email, "device": device}
        with time_machine.travel(timezone.now() + timedelta(seconds=10)):
            response = sync(lambda: client.post("/p/newsletter/", fields))
        assert response.status_code == 302
        return Customer.objects.get(email=email)

    first = submit("a@example.com", "dev-1")
    other = submit("b@example.com", "dev-2")
    no_device = submit("c@example.com", "")
    assert not FraudCase.objects.exists()
    second = submit("d@example.com", "dev-1")

    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id) == (rule.pk, second.pk)
    assert [_status(c.pk) for c in (first, other, no_device, second)] == ["active", "active", "active", "flagged"]
    assert (second.signup_device, second.signup_ip) == ("dev-1", "127.0.0.1")
    assert no_device.signup_device == ""
    long = submit("e@example.com", "y" * 200)  # capped at the column's length, not refused
    assert long.signup_device == "y" * 64
