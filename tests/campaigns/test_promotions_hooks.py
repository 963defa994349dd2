"""Engine hooks, periodic jobs and marketer pages of promotions."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.automations import registry
from apps.automations import services as engine_services
from apps.campaigns import automation
from apps.campaigns.models import Code
from apps.campaigns.promotions import services
from apps.customers.models import DomainEvent
from apps.platform.models import KillSwitchChange
from tests.campaigns.promo_helpers import campaign_with, cart
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


class _Context:
    def __init__(self, customer):
        self.customer = customer
        self.extra = {}


def test_issue_voucher_publishes_once_per_run_step_and_announces_it():
    customer = CustomerFactory()
    campaign = campaign_with("Welcome", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    services.codes_generate(campaign=campaign, pattern="W-######", count=5)
    first = automation.run_issue_voucher(_Context(customer), {"campaign": "welcome"}, "run7:s1")
    again = automation.run_issue_voucher(_Context(customer), {"campaign": "Welcome"}, "run7:s1")
    other = automation.run_issue_voucher(_Context(customer), {"campaign": "Welcome"}, "run8:s1")
    assert first == again
    assert other["code"] != first["code"]
    assert Code.objects.filter(customer=customer).count() == 2
    assert [event.payload["code"] for event in DomainEvent.objects.filter(name="voucher.published").order_by("pk")] == [
        first["code"],
        other["code"],
    ]


def test_issue_voucher_is_refused_while_the_kill_switch_is_on():
    customer = CustomerFactory()
    campaign = campaign_with("Welcome", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    services.codes_generate(campaign=campaign, pattern="W-######", count=1)
    services.kill_switch_set(on=True, reason="stop")
    with pytest.raises(registry.ActionRefused, match="kill_switch"):
        automation.run_issue_voucher(_Context(customer), {"campaign": "Welcome"}, "run1:s1")
    assert Code.objects.filter(customer=customer).count() == 0
    assert [(event.name, event.payload["on"]) for event in DomainEvent.objects.order_by("pk")] == [
        ("promotions.kill_switch", True)
    ]


def test_budget_thresholds_fire_once_at_50_80_and_100_percent():
    customer = CustomerFactory()
    campaign_with(
        "Ten uses",
        automatic=True,
        incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}],
        limits=[{"measure": "redemptions", "limit": Decimal("10")}],
    )
    for _ in range(10):
        services.redemption_redeem(cart=cart(("X", 1, "5.00")), customer=customer, codes=[])
    assert [
        (event.payload["percent"], event.payload["used"])
        for event in DomainEvent.objects.filter(name="campaign.budget_threshold").order_by("pk")
    ] == [
        (50, "5.00"),
        (80, "8.00"),
        (100, "10.00"),
    ]
    assert DomainEvent.objects.filter(name="voucher.redeemed", customer=customer).count() == 10


def test_expiring_vouchers_are_announced_once():
    customer = CustomerFactory()
    campaign = campaign_with("Soon", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    now = timezone.make_aware(datetime(2026, 12, 1, 9, 0))
    soon = services.code_create(campaign=campaign, code="SOON1", expires_at=now + timedelta(days=2))
    services.code_create(campaign=campaign, code="LATER1", expires_at=now + timedelta(days=10))
    Code.objects.filter(code__in=["SOON1", "LATER1"]).update(customer=customer)
    assert services.vouchers_expiring_announce(now=now) == 1
    assert services.vouchers_expiring_announce(now=now) == 0
    assert [event.payload["code"] for event in DomainEvent.objects.filter(name="voucher.expiring")] == [soon.code]


def test_the_three_gallery_templates_validate_against_the_engine():
    created = []
    for key, spec in automation.campaign_templates().items():
        built = spec.build({})
        workflow = engine_services.workflow_create(name=spec.name, definition=built["definition"], **built["settings"])
        created.append((key, workflow.trigger))
    assert created == [
        ("campaigns_welcome_code_newsletter", "event.custom"),
        ("campaigns_voucher_expiring_reminder", "voucher.expiring"),
        ("campaigns_winback_code", "customer.bulk_activity"),
    ]


def test_cart_simulator_shows_what_applies_and_why(client):
    user = UserFactory(username="viewer", is_staff=True, is_superuser=False)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign", content_type__app_label="campaigns"))
    client.force_login(user)
    campaign_with(
        "Min 50",
        code="MIN50",
        incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}],
        validation_rule={"field": "cart.total", "op": "gte", "value": 50},
    )
    response = client.post(
        "/admin/campaigns/promotions/simulator/", {"lines": "Shoe | 1 | 40.00", "codes": "min50", "shipping": "0"}
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "rule_failed" in text and "Cart total is $40.00; the rule needs it to be at least $50.00" in text
    response = client.post(
        "/admin/campaigns/promotions/simulator/", {"lines": "Shoe | 2 | 40.00", "codes": "min50", "shipping": "0"}
    )
    assert "Result: 5.00 USD off, total 75.00" in response.content.decode()


def test_kill_switch_page_needs_the_capability_and_shows_a_banner_everywhere(client):
    viewer = UserFactory(username="viewer", is_staff=True, is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_promotionsettings"))
    client.force_login(viewer)
    assert client.post("/admin/campaigns/promotions/kill-switch/", {"on": "1", "reason": "x"}).status_code == 403
    assert KillSwitchChange.objects.count() == 0
    viewer.user_permissions.add(
        Permission.objects.get(codename="campaign_kill_switch", content_type__app_label="platform")
    )
    client.post("/admin/campaigns/promotions/kill-switch/", {"on": "1", "reason": "Pricing error"})
    state = client.get("/admin/campaigns/promotions/kill-switch/state/").json()
    assert (state["on"], state["reason"]) == (True, "Pricing error")
    assert "kill-switch-slot" in client.get("/admin/").content.decode()  # every admin page asks for the state
    client.post("/admin/campaigns/promotions/kill-switch/", {"on": "0"})
    assert client.get("/admin/campaigns/promotions/kill-switch/state/").json()["on"] is False
    assert list(KillSwitchChange.objects.order_by("pk").values_list("turned_on", "reason", "actor")) == [
        (True, "Pricing error", "admin"),
        (False, "", "admin"),
    ]


def test_redemptions_log_lists_redemptions_of_a_campaign(client):
    user = UserFactory(username="viewer", is_staff=True, is_superuser=False)
    user.user_permissions.add(Permission.objects.get(codename="view_redemption", content_type__app_label="campaigns"))
    client.force_login(user)
    campaign = campaign_with("Five", code="FIVE", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    services.redemption_redeem(cart=cart(("X", 1, "20.00")), customer=None, codes=["FIVE"], session="chk-1")
    response = client.get(f"/admin/campaigns/promotions/redemptions/?campaign={campaign.pk}&q=chk-1")
    assert response.status_code == 200
    text = response.content.decode()
    assert "chk-1" in text and "Five (FIVE) -5.00" in text
    assert client.get("/admin/campaigns/promotions/simulator/").status_code == 403  # needs view_campaign
