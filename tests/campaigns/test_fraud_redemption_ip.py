"""Promotion redemptions carry the shopper's IP / device; `fraud.codes_redeemed_same_ip` and the built-in check."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from apps.campaigns.fraud import services
from apps.campaigns.fraud.models import FraudCase, FraudRule
from apps.campaigns.models import Redemption
from apps.campaigns.promotions import services as promotions
from apps.customers.models import Customer
from tests.campaigns.promo_helpers import campaign_with, checkout_json
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
IP_A, IP_B = "203.0.113.7", "198.51.100.9"


@pytest.fixture
def api():
    user = UserFactory(username="shop", is_staff=False, is_superuser=False)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="campaigns", codename__in=["view_campaign", "add_redemption"])
    )
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def codes():
    campaign = campaign_with("Ten off", code="TEN0", incentives=[{"kind": "percent_order", "percent": Decimal("10")}])
    for index in range(1, 10):
        promotions.code_create(campaign=campaign, code=f"TEN{index}")
    return [f"TEN{index}" for index in range(10)]


def _redeem(api, sync, customer, code, **extra):
    body = checkout_json(("Shirt", 1, "50.00"), codes=[code], customer_id=customer.pk, **extra)
    return sync(lambda: api.post("/api/v1/promotions/redeem/", body, format="json"))


def _status(customer) -> str:
    return Customer.objects.get(pk=customer.pk).status


def test_builtin_abnormal_redemptions_flags_the_fifth_code_from_one_ip_not_below_nor_another_ip(api, sync, codes):
    services.fraud_builtin_install()
    rule = FraudRule.objects.get(builtin_key="abnormal_redemptions")
    services.fraud_rule_save(rule=rule, is_enabled=True)
    same_ip = [CustomerFactory() for _ in range(5)]
    elsewhere = CustomerFactory()
    with time_machine.travel(NOW, tick=False):
        for index, customer in enumerate(same_ip[:4]):
            assert _redeem(api, sync, customer, codes[index], ip=IP_A, device="dev-1").status_code == 201
        assert not FraudCase.objects.exists()  # 4 from one IP, 1 per customer: below both thresholds
        assert _redeem(api, sync, elsewhere, codes[4], ip=IP_B).status_code == 201
        assert not FraudCase.objects.exists()
        assert _redeem(api, sync, same_ip[4], codes[5], ip=IP_A).status_code == 201

    case = FraudCase.objects.get()
    assert (case.rule_id, case.customer_id, case.action) == (rule.pk, same_ip[4].pk, "flag")
    evidence = {row["field"]: row["value"] for row in case.evidence}
    assert evidence == {"fraud.codes_redeemed": 1, "fraud.codes_redeemed_same_ip": 5}
    assert [_status(customer) for customer in same_ip] == ["active"] * 4 + ["flagged"]
    assert _status(elsewhere) == "active"
    stored = Redemption.objects.filter(customer=same_ip[0]).values_list("ip", "device").get()
    assert stored == (IP_A, "dev-1")


def test_a_block_rule_on_ip_velocity_refuses_the_next_redemption_and_the_window_is_honoured(api, sync, codes):
    rule = services.fraud_rule_save(
        name="Two codes from one IP in 30 minutes",
        trigger="voucher.redeemed",
        condition={"field": "fraud.codes_redeemed_same_ip", "window": {"minutes": 30}, "op": "gte", "value": 2},
        action="block",
        is_enabled=True,
    )
    old, first, second, other = (CustomerFactory() for _ in range(4))
    with time_machine.travel(NOW - timedelta(minutes=31), tick=False):
        assert _redeem(api, sync, old, codes[0], ip=IP_A).status_code == 201
    with time_machine.travel(NOW, tick=False):
        assert _redeem(api, sync, first, codes[1], ip=IP_A).status_code == 201  # the old one is out of the window
        assert not FraudCase.objects.exists()
        assert _redeem(api, sync, second, codes[3], ip=IP_A).status_code == 201
        case = FraudCase.objects.get()
        assert (case.rule_id, case.customer_id, case.evidence[0]["value"]) == (rule.pk, second.pk, 2)
        assert _status(second) == "blocked"

        refused = _redeem(api, sync, second, codes[4], ip=IP_A)
        assert (refused.status_code, refused.json()["error"]) == (400, "customer_blocked")
        assert _redeem(api, sync, other, codes[5], ip=IP_B).status_code == 201  # another IP is unaffected
    assert FraudCase.objects.count() == 1
    assert [_status(customer) for customer in (old, first, other)] == ["active"] * 3
    assert Redemption.objects.filter(customer=second).count() == 1


def test_bad_ip_or_device_is_a_400_with_the_path_and_writes_nothing(api, sync, codes):
    customer = CustomerFactory()
    for extra, path in (({"ip": "not-an-ip"}, "ip"), ({"device": "d" * 65}, "device")):
        response = _redeem(api, sync, customer, codes[0], **extra)
        assert response.status_code == 400
        assert [error["path"] for error in response.json()["errors"]] == [path]
    assert not Redemption.objects.exists()


def test_a_redeem_without_ip_keeps_the_reservations_ip(api, sync, codes):
    customer = CustomerFactory()
    body = checkout_json(("Shirt", 1, "50.00"), codes=[codes[0]], customer_id=customer.pk, session="s-1")
    reserved = api.post("/api/v1/promotions/reserve/", {**body, "ip": IP_B, "device": "phone"}, format="json")
    assert reserved.status_code == 201
    redeemed = sync(lambda: api.post("/api/v1/promotions/redeem/", body, format="json"))
    assert redeemed.status_code == 201
    assert Redemption.objects.values_list("status", "ip", "device").get() == ("redeemed", IP_B, "phone")


def test_the_migration_updates_the_untouched_builtin_and_leaves_a_tuned_one():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("apps.campaigns.migrations.0016_redemption_ip_device")
    services.fraud_builtin_install()
    rule = FraudRule.objects.get(builtin_key="abnormal_redemptions")
    FraudRule.objects.filter(pk=rule.pk).update(condition=migration.OLD_CONDITION, name="Abnormal redemptions (old)")
    migration.abnormal_redemptions_cover_ip(apps, None)
    rule.refresh_from_db()
    fields = [node["field"] for node in rule.condition["any"]]
    assert fields == ["fraud.codes_redeemed", "fraud.codes_redeemed_same_ip"]
    assert rule.name == "Abnormal redemptions (5 codes in an hour from one customer or IP)"

    tuned = {**migration.OLD_CONDITION, "value": 9}
    FraudRule.objects.filter(pk=rule.pk).update(condition=tuned)
    migration.abnormal_redemptions_cover_ip(apps, None)
    rule.refresh_from_db()
    assert rule.condition == tuned
