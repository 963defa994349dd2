"""
"Voucher expiring in N days": N is the template's parameter (default 3, 1 to 90) that the gallery installs as
the trigger's `voucher.notice_days` condition; the daily notice sends `voucher.expiring` once per code and N
that active workflows ask for, so a 7-day and a 3-day reminder each e-mail once, at their time.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError

from apps.automations import gallery
from apps.automations.models import Workflow
from apps.campaigns import tasks
from apps.campaigns.automation import voucher_notice_days
from apps.campaigns.models import Code
from apps.campaigns.promotions import services as promotions
from apps.customers.models import DomainEvent
from tests.automations.test_gallery_reminders import NOW, clock, install  # noqa: F401  (fixture)
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
KEY = "campaigns_voucher_expiring_reminder"


def code_for(customer, code: str, expires_in: timedelta) -> None:
    campaign = campaign_with(f"C-{code}", incentives=[{"kind": "fixed_order", "amount": Decimal("5.00")}])
    promotions.code_create(campaign=campaign, code=code, expires_at=NOW + expires_in)
    Code.objects.filter(code=code).update(customer=customer)


def test_n_defaults_to_3_and_is_refused_outside_1_to_90_with_its_path():
    spec = gallery.TEMPLATES[KEY]

    assert spec.build()["definition"]["trigger"]["where"] == {"field": "voucher.notice_days", "op": "eq", "value": "3"}
    assert spec.build({"days": "90"})["definition"]["trigger"]["where"]["value"] == "90"
    for bad in (0, 91, "soon", True):
        with pytest.raises(ValidationError) as refused:
            spec.build({"days": bad})
        assert list(refused.value.message_dict) == ["params.days"]
    assert [param for param in spec.as_dict()["params"] if param["name"] == "days"] == [
        {
            "name": "days",
            "label": "Days before expiry",
            "type": "days",
            "default": 3,
            "help": "1 to 90.",
            "min": 1,
            "max": 90,
        }
    ]


def test_the_gallery_page_offers_n_and_installing_91_is_refused(client):
    marketer = UserFactory(username="mk", is_superuser=False, is_staff=True)
    marketer.groups.add(Group.objects.get(name="marketer"))
    client.force_login(marketer)

    page = client.get("/admin/automations/gallery/").content.decode()
    refused = client.post(f"/admin/automations/gallery/{KEY}/install/", {"param-days": "91"}, follow=True)

    assert 'min="1" max="90" name="param-days" value="3"' in page
    assert "params.days: Enter a number between 1 and 90." in refused.content.decode()
    assert not Workflow.objects.exists()


def test_the_builder_refuses_a_notice_outside_1_to_90_with_its_path():
    from apps.automations import services as engine_services

    definition = gallery.TEMPLATES[KEY].build({"days": 7})["definition"]
    definition["trigger"]["where"]["value"] = "91"

    with pytest.raises(ValidationError) as refused:
        engine_services.workflow_create(name="Bad", definition=definition)

    assert "trigger.where.value" in str(refused.value)
    assert not Workflow.objects.exists()


def test_a_7_day_and_a_3_day_reminder_each_email_once_at_their_time(clock, fire):  # noqa: F811
    body = "Left: {{ voucher.expires_in_days }} days"
    install(KEY, {"days": 7, "subject": "A week left for {{ voucher.code }}", "body": body})
    install(KEY, {"days": 3, "subject": "Last days for {{ voucher.code }}", "body": body})
    customer = CustomerFactory(email="ana@example.com", accepts_marketing=True)
    code_for(customer, "WEEK", timedelta(days=6, hours=12))
    assert voucher_notice_days() == [3, 7]

    fire(tasks.vouchers_expiring_task)
    fire(tasks.vouchers_expiring_task)  # the same day again: nothing new
    clock.move_to(NOW + timedelta(days=4))  # 2.5 days left
    fire(tasks.vouchers_expiring_task)
    fire(tasks.vouchers_expiring_task)

    assert [message.subject for message in mail.outbox] == ["A week left for WEEK", "Last days for WEEK"]
    assert ["Left: 7 days" in mail.outbox[0].body, "Left: 3 days" in mail.outbox[1].body] == [True, True]
    notices = DomainEvent.objects.filter(name="voucher.expiring").order_by("pk")
    assert [(event.payload["days"], event.payload["days_left"]) for event in notices] == [(7, 7), (3, 3)]


def test_a_code_published_inside_the_short_window_gets_only_the_short_notice(clock, fire):  # noqa: F811
    install(KEY, {"days": 7, "subject": "A week"})
    install(KEY, {"days": 3, "subject": "Last days"})
    code_for(CustomerFactory(accepts_marketing=True), "LATE", timedelta(days=2))

    fire(tasks.vouchers_expiring_task)
    clock.move_to(NOW + timedelta(days=1))
    fire(tasks.vouchers_expiring_task)

    assert [message.subject for message in mail.outbox] == ["Last days"]


def test_without_workflows_the_notice_stays_at_3_days():
    assert voucher_notice_days() == [3]
