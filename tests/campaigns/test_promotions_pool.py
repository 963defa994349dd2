"""Codes: CSV import/export, bulk publication over a segment, the low-pool alert, `{{ voucher.code }}` in a later
step; redemptions linked to the order that arrives; distinct-customers limits; amounts beyond minor units."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import override_settings
from rest_framework.test import APIClient

from apps.automations.services import workflow_activate, workflow_create
from apps.campaigns import automation
from apps.campaigns import services as segment_services
from apps.campaigns.models import Code, Redemption
from apps.campaigns.promotions import codes as pool
from apps.campaigns.promotions import services
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent, Order
from apps.platform.models import AuditEntry
from loyalty_site.lib.errors import DomainError
from tests.campaigns.promo_helpers import campaign_with, cart, checkout_json
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    user = UserFactory(username="marketer", is_staff=True, is_superuser=False, email="m@example.com")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="campaigns"),
        *Permission.objects.filter(content_type__app_label="customers"),
    )
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


def _five(name="Five", **fields):
    return campaign_with(name, incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}], **fields)


# --- CSV import / export ----------------------------------------------------------------------------------


def test_csv_import_stores_the_codes_and_the_export_gives_them_back(api):
    campaign = _five()
    body = {"csv": "code,max_uses,expires_at\nvip-001,1,2026-12-31\nVIP-002,,\nstaff,unlimited,\n"}

    response = api.post(f"/api/v1/promotion-campaigns/{campaign.pk}/import-codes/", body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json() == {"created": 3, "campaign": campaign.pk}
    assert list(Code.objects.order_by("code").values_list("code", "max_uses")) == [
        ("STAFF", None),
        ("VIP-001", 1),
        ("VIP-002", 1),
    ]
    exported = api.get(f"/api/v1/promotion-campaigns/{campaign.pk}/export-codes/")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    text = b"".join(exported.streaming_content).decode()
    lines = text.strip().splitlines()
    assert lines[0] == "code,max_uses,uses,expires_at,expires_days_after_publication,customer_id,published_at"
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["VIP-001", "1", "0"],
        ["VIP-002", "1", "0"],
        ["STAFF", "unlimited", "0"],
    ]


def test_a_bad_csv_row_refuses_the_whole_file_with_paths_and_writes_nothing(api):
    campaign = _five(code="TAKEN")
    body = {"csv": "code,max_uses,expires_at\nGOOD-1,1,\nBAD CODE!,1,\nGOOD-1,0,\ntaken,1,someday\n"}

    response = api.post(f"/api/v1/promotion-campaigns/{campaign.pk}/import-codes/", body, format="json")

    assert response.status_code == 400
    assert {error["path"] for error in response.json()["errors"]} == {
        "rows[1].code",
        "rows[2].code",
        "rows[2].max_uses",
        "rows[3].code",
        "rows[3].expires_at",
    }
    assert list(Code.objects.values_list("code", flat=True)) == ["TAKEN"]


def test_import_and_export_need_their_permissions():
    campaign = _five()
    client = APIClient()
    client.force_authenticate(UserFactory(username="nobody", is_staff=True, is_superuser=False))
    url = f"/api/v1/promotion-campaigns/{campaign.pk}/"
    assert client.post(url + "import-codes/", {"csv": "code\nA1\n"}, format="json").status_code == 403
    assert client.get(url + "export-codes/").status_code == 403
    assert client.post(url + "publish-segment/", {"segment": 1}, format="json").status_code == 403
    limit = {"campaign": campaign.pk, "measure": "redemptions", "limit": "5"}
    assert client.post("/api/v1/promotion-limits/", limit, format="json").status_code == 403
    incentive = {"campaign": campaign.pk, "kind": "free_shipping"}
    assert client.post("/api/v1/promotion-incentives/", incentive, format="json").status_code == 403
    assert (Code.objects.count(), campaign.limits.count(), campaign.incentives.count()) == (0, 0, 1)


# --- Bulk publication over a segment and the low-pool alert --------------------------------------------------


def test_segment_publication_gives_each_member_one_code_and_the_pool_alert_fires_once(
    settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    owner = UserFactory(username="owner", email="owner@example.com")
    campaign = _five(low_pool_threshold=3, owner=owner)
    services.codes_generate(campaign=campaign, pattern="SEG-####", count=6)
    members = [CustomerFactory(country="PT") for _ in range(5)]
    CustomerFactory(country="FR")
    segment = segment_services.segment_create(
        name="Portugal", condition={"field": "customer.country", "op": "eq", "value": "PT"}
    )
    segment_services.segment_refresh(segment=segment)
    services.code_publish(campaign=campaign, customer=members[0], ref="api:1")  # already holds one

    with django_capture_on_commit_callbacks(execute=True):
        result = pool.codes_publish_segment(campaign=campaign, segment=segment, ref="segment-run-1")
    with django_capture_on_commit_callbacks(execute=True):
        again = pool.codes_publish_segment(campaign=campaign, segment=segment, ref="segment-run-2")

    assert (result.published, result.without_code, again.published) == (4, 0, 0)
    holders = Code.objects.filter(campaign=campaign, customer__isnull=False)
    assert sorted(holders.values_list("customer_id", flat=True)) == sorted(member.pk for member in members)
    assert pool.free_codes(campaign).count() == 1
    assert DomainEvent.objects.filter(name="campaign.codes_low").count() == 1
    assert [(message.to, message.subject) for message in mail.outbox] == [
        (["owner@example.com"], "Codes running low: Five")
    ]


def test_segment_publication_stops_when_the_pool_is_empty():
    campaign = _five(low_pool_threshold=0)
    services.codes_generate(campaign=campaign, pattern="ONE-####", count=2)
    for _ in range(3):
        CustomerFactory(country="PT")
    segment = segment_services.segment_create(
        name="PT", condition={"field": "customer.country", "op": "eq", "value": "PT"}
    )
    segment_services.segment_refresh(segment=segment)

    result = pool.codes_publish_segment(campaign=campaign, segment=segment, ref="x")

    assert (result.published, result.without_code) == (2, 1)
    with pytest.raises(DomainError) as error:
        services.code_publish(campaign=campaign, customer=CustomerFactory())
    assert error.value.code == "codes_exhausted"


def test_new_codes_rearm_the_low_pool_alert():
    campaign = _five(low_pool_threshold=2)
    services.codes_generate(campaign=campaign, pattern="RE-####", count=2)
    services.code_publish(campaign=campaign, customer=CustomerFactory())
    assert DomainEvent.objects.filter(name="campaign.codes_low").count() == 1
    services.codes_generate(campaign=campaign, pattern="RE-####", count=3)  # 4 free
    for _ in range(3):
        services.code_publish(campaign=campaign, customer=CustomerFactory())
    assert [
        event.payload["free"] for event in DomainEvent.objects.filter(name="campaign.codes_low").order_by("pk")
    ] == [1, 1]


# --- {{ voucher.code }} in a later step of the same run ---------------------------------------------------


def test_a_later_step_emails_the_code_the_issue_voucher_step_published(settings, django_capture_on_commit_callbacks):
    settings.TASKS_SYNC = True
    campaign = _five(name="Welcome")
    services.codes_generate(campaign=campaign, pattern="WEL-####", count=3)
    spec = automation.campaign_templates()["campaigns_welcome_code_newsletter"]
    built = spec.build({})
    workflow = workflow_activate(workflow=workflow_create(name=spec.name, definition=built["definition"]))
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=True)

    with django_capture_on_commit_callbacks(execute=True):
        customer_services.custom_event_record(customer=customer, name="newsletter_signup")

    code = Code.objects.get(customer=customer)
    assert workflow.pk and code.publication_ref.startswith("workflow:wr")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ana@example.com"]
    assert f"your code {code.code} is valid for 30 days." in mail.outbox[0].body


# --- Redemption ↔ order ----------------------------------------------------------------------------------


def test_an_order_sent_with_the_checkout_session_links_the_redemption(
    api, settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    customer = CustomerFactory(external_id="c-1")
    _five(code="FIVE")
    redeemed = api.post(
        "/api/v1/promotions/redeem",
        checkout_json(("Shoe", 1, "40.00"), codes=["FIVE"], session="chk-77", customer_id=customer.pk),
        format="json",
    )
    assert redeemed.status_code == 201, redeemed.json()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/orders/",
            {
                "external_id": "o-77",
                "customer_external_id": "c-1",
                "currency": "USD",
                "checkout_session": "chk-77",
                "discount_total": "5.00",
                "lines": [{"title": "Shoe", "quantity": 1, "unit_price": "40.00"}],
            },
            format="json",
        )

    assert response.status_code == 201, response.json()
    order = Order.objects.get(external_id="o-77")
    assert Redemption.objects.get(pk=redeemed.json()["id"]).order_id == order.pk


def test_a_connector_links_by_the_codes_of_the_order_once():
    customer = CustomerFactory()
    _five(code="FIVE")
    redemption = services.redemption_redeem(cart=cart(("X", 1, "30.00")), customer=customer, codes=["FIVE"])
    order, _ = customer_services.order_create(
        customer=customer,
        currency="USD",
        lines=[customer_services.LineInput(title="X", quantity=1, unit_price=Decimal("30.00"))],
    )
    assert [row.pk for row in services.redemption_link_order(order=order, codes=["five"])] == [redemption.pk]
    assert services.redemption_link_order(order=order, codes=["FIVE"]) == []  # linked once
    other = CustomerFactory()
    assert services.redemption_link_order(order=Order(customer=other, placed_at=order.placed_at), codes=["FIVE"]) == []


# --- Distinct customers ----------------------------------------------------------------------------------


def test_first_two_customers_limit_counts_each_customer_once_and_a_rollback_frees_the_slot():
    campaign_with(
        "First two",
        automatic=True,
        incentives=[{"kind": "fixed_order", "amount": Decimal("1.00")}],
        limits=[{"measure": "distinct_customers", "limit": Decimal("2")}],
    )
    ana, bea, cid = CustomerFactory(), CustomerFactory(), CustomerFactory()
    services.redemption_redeem(cart=cart(("X", 1, "9.00")), customer=ana, codes=[])
    services.redemption_redeem(cart=cart(("X", 1, "9.00")), customer=ana, codes=[])  # same customer: counted once
    second = services.redemption_redeem(cart=cart(("X", 1, "9.00")), customer=bea, codes=[])
    with pytest.raises(DomainError) as error:
        services.redemption_redeem(cart=cart(("X", 1, "9.00")), customer=cid, codes=[])
    assert error.value.code == "budget_exhausted"
    with pytest.raises(DomainError) as anonymous:
        services.redemption_redeem(cart=cart(("X", 1, "9.00")), customer=None, codes=[])
    assert anonymous.value.code == "customer_required"

    services.redemption_rollback(redemption=second)
    assert services.redemption_redeem(cart=cart(("X", 1, "9.00")), customer=cid, codes=[]).discount_total == Decimal(
        "1.00"
    )


# --- Amounts beyond the currency's minor units --------------------------------------------------------------


def test_amounts_with_more_decimals_than_the_currency_are_400_with_the_path(api):
    response = api.post(
        "/api/v1/orders/",
        {
            "external_id": "o-jpy",
            "customer": {"external_id": "c-jp"},
            "currency": "JPY",
            "exchange_rate": "0.0067",
            "shipping_total": "10.5",
            "lines": [
                {"title": "Tea", "quantity": 1, "unit_price": "1000"},
                {"title": "Cup", "quantity": 1, "unit_price": "10.5"},
            ],
        },
        format="json",
    )
    assert response.status_code == 400
    assert {error["path"] for error in response.json()["errors"]} == {"shipping_total", "lines[1].unit_price"}
    assert not Order.objects.exists()
    validated = api.post("/api/v1/promotions/validate", checkout_json(("X", 1, "1.005")), format="json")
    assert validated.status_code == 400
    assert [error["path"] for error in validated.json()["errors"]] == ["lines[0].unit_price"]


@override_settings(SHOP_CURRENCY="JPY")
def test_a_jpy_shop_refuses_fractional_incentives_and_limits():
    campaign = services.campaign_create(name="Yen", type="discount_codes")
    with pytest.raises(ValidationError) as error:
        services.incentive_create(campaign=campaign, kind="fixed_order", amount=Decimal("10.5"))
    assert error.value.message_dict == {"amount": ["JPY has no minor unit: give a whole amount."]}
    with pytest.raises(ValidationError) as limit_error:
        services.limit_create(campaign=campaign, measure="discount_amount", limit=Decimal("100.50"))
    assert "limit" in limit_error.value.message_dict
    assert services.incentive_create(campaign=campaign, kind="fixed_order", amount=Decimal("10.00")).amount == 10
    assert AuditEntry.objects.filter(object_type="campaigns.incentive", action="created").count() == 1


# --- Admin: the codes page and the inlines through services -------------------------------------------------


def test_codes_page_imports_exports_and_publishes_with_permissions(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    viewer = UserFactory(username="viewer", is_staff=True, is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_code", content_type__app_label="campaigns"))
    client.force_login(viewer)
    campaign = _five()
    url = f"/admin/campaigns/promotions/campaigns/{campaign.pk}/codes/"
    assert client.get(url).status_code == 200
    upload = SimpleUploadedFile("codes.csv", b"code\nA-1\nA-2\n", content_type="text/csv")
    assert client.post(url, {"operation": "import", "file": upload}).status_code == 403
    assert Code.objects.count() == 0

    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_code", "change_code"], content_type__app_label="campaigns")
    )
    upload = SimpleUploadedFile("codes.csv", b"code\nA-1\nA-2\n", content_type="text/csv")
    assert client.post(url, {"operation": "import", "file": upload}).status_code == 302
    bad = SimpleUploadedFile("codes.csv", b"code\nA-3\nA-1\n", content_type="text/csv")
    page = client.post(url, {"operation": "import", "file": bad}, follow=True).content.decode()
    assert "Nothing imported: rows[1].code: The code A-1 exists already." in page
    CustomerFactory(country="PT")
    segment = segment_services.segment_create(
        name="PT", condition={"field": "customer.country", "op": "eq", "value": "PT"}
    )
    segment_services.segment_refresh(segment=segment)
    page = client.post(url, {"operation": "publish", "segment": segment.pk}, follow=True).content.decode()
    assert "Published 1 codes to “PT”." in page
    exported = client.get(url + "?export=csv")
    assert b"".join(exported.streaming_content).decode().splitlines()[1].startswith("A-1,1,0,")
    assert sorted(Code.objects.values_list("code", flat=True)) == ["A-1", "A-2"]


def test_admin_inline_incentives_and_limits_go_through_the_services_and_are_audited(admin_client):
    campaign = _five()
    incentive = campaign.incentives.get()
    data = {
        "name": "Five",
        "type": "discount_codes",
        "status": "active",
        "weekdays": "[]",
        "tags": "[]",
        "joint_categories": "[]",
        "priority": "0",
        "stacking": "stackable",
        "low_pool_threshold": "100",
        "holdout_percent": "0",
        "incentives-TOTAL_FORMS": "1",
        "incentives-INITIAL_FORMS": "1",
        "incentives-0-id": str(incentive.pk),
        "incentives-0-campaign": str(campaign.pk),
        "incentives-0-kind": "fixed_order",
        "incentives-0-amount": "7.00",
        "incentives-0-is_active": "on",
        "limits-TOTAL_FORMS": "1",
        "limits-INITIAL_FORMS": "0",
        "limits-0-measure": "redemptions",
        "limits-0-limit": "10",
        "limits-0-period": "total",
        "limits-0-scope": "campaign",
        "limits-0-action": "refuse",
    }
    response = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    incentive.refresh_from_db()
    assert incentive.amount == Decimal("7.00")
    entries = {
        (entry.object_type, entry.action): entry.changes
        for entry in AuditEntry.objects.filter(object_type__in=["campaigns.incentive", "campaigns.limit"])
    }
    assert entries[("campaigns.incentive", "updated")] == {"amount": {"old": "5.00", "new": "7.00"}}
    assert Decimal(entries[("campaigns.limit", "created")]["limit"]["new"]) == Decimal("10")
    assert AuditEntry.objects.get(object_type="campaigns.incentive", action="updated").actor_label == "admin"

    data.update({"limits-INITIAL_FORMS": "0", "limits-0-measure": "redemptions", "limits-0-limit": "2.5"})
    page = admin_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert page.status_code == 200 and "is a whole number" in page.content.decode()
    assert campaign.limits.count() == 1


# --- Incentives and limits as their own API resources -----------------------------------------------------


def test_incentives_and_limits_are_resources_with_paths_in_errors_and_audit(api):
    campaign = _five()
    bad = api.post(
        "/api/v1/promotion-incentives/",
        {
            "campaign": campaign.pk,
            "kind": "percent_lines",
            "percent": "10",
            "lines_rule": {"field": "line.colour", "op": "eq", "value": 1},
        },
        format="json",
    )
    assert bad.status_code == 400
    assert [error["path"] for error in bad.json()["errors"]] == ["lines_rule.field"]
    created = api.post(
        "/api/v1/promotion-incentives/",
        {"campaign": campaign.pk, "kind": "percent_order", "percent": "10"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    patched = api.patch(f"/api/v1/promotion-incentives/{created.json()['id']}/", {"percent": "15"}, format="json")
    assert (patched.status_code, patched.json()["percent"]) == (200, "15.000")

    limit = api.post(
        "/api/v1/promotion-limits/",
        {"campaign": campaign.pk, "measure": "redemptions", "limit": "1.5"},
        format="json",
    )
    assert limit.status_code == 400 and [error["path"] for error in limit.json()["errors"]] == ["limit"]
    limit = api.post(
        "/api/v1/promotion-limits/",
        {"campaign": campaign.pk, "measure": "discount_amount", "limit": "300.00", "action": "reduce"},
        format="json",
    )
    assert limit.status_code == 201, limit.json()
    assert limit.json()["usage"]["used"] == "0"
    services.redemption_redeem(
        cart=cart(("X", 1, "50.00")), customer=None, codes=[Code.objects.create(campaign=campaign, code="L1").code]
    )
    changed = api.post(f"/api/v1/promotion-limits/{limit.json()['id']}/", {}, format="json")
    assert changed.status_code == 405
    shape = api.patch(f"/api/v1/promotion-limits/{limit.json()['id']}/", {"measure": "order_value"}, format="json")
    assert (shape.status_code, shape.json()["error"]) == (409, "limit_in_use")
    assert api.delete(f"/api/v1/promotion-limits/{limit.json()['id']}/").status_code == 204
    nested = api.patch(
        f"/api/v1/promotion-campaigns/{campaign.pk}/",
        {"limits": [{"measure": "redemptions", "limit": "5"}]},
        format="json",
    )
    assert nested.status_code == 400 and nested.json()["errors"][0]["path"] == "limits"
    actions = list(
        AuditEntry.objects.filter(object_type__in=["campaigns.incentive", "campaigns.limit"])
        .order_by("pk")
        .values_list("object_type", "action")
    )
    assert actions[-4:] == [
        ("campaigns.incentive", "created"),
        ("campaigns.incentive", "updated"),
        ("campaigns.limit", "created"),
        ("campaigns.limit", "deleted"),
    ]


# --- Loyalty reward codes are promotion codes ----------------------------------------------------------------


def test_a_loyalty_reward_code_validates_stacks_and_redeems_like_a_campaign_code():
    from apps.loyalty import services as loyalty_services
    from apps.loyalty.models import Redemption as RewardRedemption
    from apps.loyalty.models import Reward
    from tests.loyalty.conftest import program_make

    program = program_make()
    customer = CustomerFactory()
    membership, _ = loyalty_services.member_join(customer=customer, program=program)
    loyalty_services.points_award(membership=membership, points=500, reason="seed", key="seed")
    reward = Reward.objects.create(program=program, name="10 off", kind="fixed_discount", value=10, points_cost=100)
    campaign = campaign_with(
        "Reward 10 off",
        incentives=[{"kind": "fixed_order", "amount": Decimal("10.00")}],
        validation_rule={"field": "cart.total", "op": "gte", "value": 30},
        stacking="exclusive",
        reward=reward,
    )
    campaign_with("Auto 5", automatic=True, incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    issued = loyalty_services.reward_redeem(membership=membership, reward=reward)

    from apps.campaigns.promotions.eligibility import promotions_evaluate

    small = promotions_evaluate(cart=cart(("X", 1, "20.00")), customer=customer, codes=[issued.code.lower()])
    assert [(c.code_text, c.refusal.reason) for c in small.skipped if c.code_text] == [(issued.code, "rule_failed")]
    other = promotions_evaluate(cart=cart(("X", 1, "40.00")), customer=CustomerFactory(), codes=[issued.code])
    assert [c.refusal.reason for c in other.skipped if c.code_text] == ["code_not_yours"]
    assert Code.objects.count() == 0  # read-only answers store nothing

    redemption = services.redemption_redeem(cart=cart(("X", 1, "40.00")), customer=customer, codes=[issued.code])

    assert redemption.discount_total == Decimal("10.00")  # exclusive: the automatic 5 off is skipped
    assert Code.objects.get(campaign=campaign).uses == 1
    assert RewardRedemption.objects.get(pk=issued.pk).status == "used"
    with pytest.raises(DomainError) as again:
        services.redemption_redeem(cart=cart(("X", 1, "40.00")), customer=customer, codes=[issued.code])
    assert again.value.code == "code_used"
