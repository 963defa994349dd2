"""
Sign-up forms: form → double opt-in → member → voucher, exactly once even when submitted twice; the bot traps
(honeypot, minimum fill time, per-IP rate limit); bad input re-rendered with errors; the referral page.
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from apps.campaigns.fraud import services as fraud_services
from apps.campaigns.fraud.models import FraudRule
from apps.campaigns.landing.models import FormSubmission
from apps.campaigns.promotions import services as promo_services
from apps.campaigns.promotions.models import Code
from apps.customers.models import Customer, DomainEvent
from apps.loyalty import services as loyalty_services
from apps.loyalty.choices import ReferralStatus
from apps.loyalty.models import Membership, Referral
from tests.campaigns.landing_helpers import form_block, published_page
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cache_cleared")]


@pytest.fixture
def newsletter():
    """'5 % for newsletter sign-up, valid one month': a pool of codes expiring 30 days after publication."""
    program_make(name="Coffee Club", referrer_bonus=50, referee_bonus=20)
    campaign = campaign_with("Newsletter 5 %", incentives=[{"kind": "percent_order", "percent": Decimal("5")}])
    promo_services.codes_generate(campaign=campaign, pattern="NEWS-####", count=5, expires_days_after_publication=30)
    return published_page(blocks=[{"type": "hero", "title": "5 % off"}, form_block(voucher_campaign=campaign.pk)])


def _form(client, path: str) -> dict[str, str]:
    html = client.get(path).content.decode()
    started = re.search(r'name="started" value="([^"]+)"', html).group(1)
    return {"started": started, "website": ""}


def _send(client, sync, path: str, fields: dict[str, str], **extra):
    return sync(lambda: client.post(path, fields, **extra))


def _confirm_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/c/[^\s]+/)", message.body).group(1)


def test_form_then_double_opt_in_then_member_and_voucher_once_even_when_submitted_twice(client, sync, newsletter):
    fields = {
        **_form(client, "/p/newsletter/"),
        "email": "Ada@Example.com",
        "first_name": "Ada",
        "attribute__shoe_size": "38",
        "consent_email": "on",
    }

    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        first = _send(client, sync, "/p/newsletter/", fields)
        second = _send(client, sync, "/p/newsletter/", fields)

    assert (first.status_code, first["Location"]) == (302, "/p/newsletter/?sent=1#signup")
    assert second.status_code == 302
    customer = Customer.objects.get()
    assert (customer.email, customer.first_name, customer.attributes) == ("ada@example.com", "Ada", {"shoe_size": "38"})
    submission = FormSubmission.objects.get()
    assert (submission.status, submission.consents) == ("pending", ["email"])
    submitted = DomainEvent.objects.get(name="form.submitted")
    assert submitted.payload["fields"] == {"email": "ada@example.com", "first_name": "Ada", "attribute:shoe_size": "38"}
    assert len(mail.outbox) == 1  # one confirmation e-mail, not two
    assert not Membership.objects.exists() and not Code.objects.filter(customer=customer).exists()
    assert "Check your inbox." in client.get(first["Location"]).content.decode()

    link = _confirm_link(mail.outbox[0])
    sync(lambda: client.post(link))
    sync(lambda: client.post(link))  # a replayed click changes nothing

    submission.refresh_from_db()
    code = Code.objects.get(customer=customer)
    assert submission.status == "confirmed"
    assert submission.outcome == {"membership": Membership.objects.get(customer=customer).pk, "voucher": code.code}
    assert code.publication_ref == f"form_submission:{submission.pk}"
    assert DomainEvent.objects.filter(name="member.joined", customer=customer).count() == 1
    assert DomainEvent.objects.filter(name="voucher.published", customer=customer).count() == 1
    assert DomainEvent.objects.filter(name="form.submitted").count() == 1


def test_a_returning_confirmed_subscriber_is_completed_at_once_and_keeps_their_details(client, sync, newsletter):
    known = CustomerFactory(email="grace@example.com", first_name="Grace", attributes={"shoe_size": "40"})
    fields = {
        **_form(client, "/p/newsletter/"),
        "email": "GRACE@example.com",
        "first_name": "Mallory",
        "attribute__shoe_size": "44",
        "consent_email": "on",
    }
    # Grace confirmed her address earlier (through another form).
    from apps.customers.consent import services as consent

    sync(lambda: consent.request_double_opt_in(known, channel="email", source="form:earlier"))
    sync(lambda: client.post(_confirm_link(mail.outbox[0])))

    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        _send(client, sync, "/p/newsletter/", fields)

    known.refresh_from_db()
    assert Customer.objects.count() == 1
    assert (known.first_name, known.attributes) == ("Grace", {"shoe_size": "40"})  # a form never overwrites
    assert FormSubmission.objects.get().status == "confirmed"
    assert Code.objects.filter(customer=known).count() == 1
    assert len(mail.outbox) == 1  # no second confirmation e-mail


def test_the_honeypot_answers_like_a_success_and_writes_nothing(client, sync, newsletter):
    fields = {
        **_form(client, "/p/newsletter/"),
        "email": "bot@example.com",
        "consent_email": "on",
        "website": "http://spam.example",
    }
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        answer = _send(client, sync, "/p/newsletter/", fields)

    assert (answer.status_code, answer["Location"]) == (302, "/p/newsletter/?sent=1#signup")
    assert (Customer.objects.count(), FormSubmission.objects.count(), len(mail.outbox)) == (0, 0, 0)


def test_a_form_sent_faster_than_a_person_can_or_with_a_forged_start_is_refused(client, sync, newsletter):
    fields = {**_form(client, "/p/newsletter/"), "email": "fast@example.com", "consent_email": "on"}

    too_fast = _send(client, sync, "/p/newsletter/", fields)
    forged = _send(client, sync, "/p/newsletter/", {**fields, "started": "1700000000:forged"})

    assert too_fast.status_code == 400 and "That was quick!" in too_fast.content.decode()
    assert forged.status_code == 400 and "could not be checked" in forged.content.decode()
    assert 'value="fast@example.com"' in too_fast.content.decode()  # what was typed is kept
    assert (Customer.objects.count(), FormSubmission.objects.count()) == (0, 0)


def test_submissions_are_rate_limited_per_ip(client, sync, newsletter, settings):
    settings.LANDING_FORM_SUBMISSIONS_PER_HOUR = 2
    started = _form(client, "/p/newsletter/")
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        answers = [
            _send(client, sync, "/p/newsletter/", {**started, "email": f"p{n}@example.com", "consent_email": "on"})
            for n in range(3)
        ]
        elsewhere = _send(
            client,
            sync,
            "/p/newsletter/",
            {**started, "email": "p9@example.com", "consent_email": "on"},
            REMOTE_ADDR="198.51.100.7",
        )

    assert [answer.status_code for answer in answers] == [302, 302, 429]
    assert "Too many sign-ups" in answers[2].content.decode()
    assert elsewhere.status_code == 302
    assert sorted(Customer.objects.values_list("email", flat=True)) == [
        "p0@example.com",
        "p1@example.com",
        "p9@example.com",
    ]


def test_bad_input_is_shown_again_with_errors_on_the_fields_and_nothing_is_written(client, sync, newsletter):
    fields = {**_form(client, "/p/newsletter/"), "email": "not-an-address", "first_name": "x" * 500}
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        answer = _send(client, sync, "/p/newsletter/", fields)

    html = answer.content.decode()
    assert answer.status_code == 400
    assert 'id="id_email-error">Enter a valid email address.' in html
    assert 'aria-invalid="true"' in html
    assert "Tick this box to receive your welcome gift" in html  # the e-mail consent is needed for the voucher
    assert (Customer.objects.count(), FormSubmission.objects.count()) == (0, 0)


def test_the_referral_page_shows_who_invites_and_records_the_referral_on_confirmation(client, sync, newsletter):
    referrer_customer = CustomerFactory(first_name="Ada", email="ada@example.com", signup_ip="203.0.113.5")
    referrer, _ = loyalty_services.member_join(customer=referrer_customer)
    loyalty_services.referral_name_set(membership=referrer, show=True)
    path = f"/me/r/{referrer.referral_code}/"

    html = client.get(path).content.decode()
    assert "Ada invited you to Coffee Club" in html and "20 welcome points" in html and 'name="email"' in html

    fields = {**_form(client, path), "email": "bob@example.com", "first_name": "Bob", "consent_email": "on"}
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        answer = _send(client, sync, path, fields)
    assert answer.status_code == 302 and not Referral.objects.exists()  # not before the address is confirmed

    sync(lambda: client.post(_confirm_link(mail.outbox[0])))

    referral = Referral.objects.get()
    assert (referral.referrer_id, referral.referee.email, referral.status) == (
        referrer.pk,
        "bob@example.com",
        ReferralStatus.REWARDED,
    )


@pytest.mark.parametrize("variant", ["a.d.a+friends@gmail.com", "ADA@googlemail.com"])
def test_self_referral_by_a_gmail_variant_is_refused(client, sync, newsletter, variant):
    referrer, _ = loyalty_services.member_join(customer=CustomerFactory(email="ada@gmail.com"))
    path = f"/me/r/{referrer.referral_code}/"
    fields = {**_form(client, path), "email": variant, "consent_email": "on"}
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        _send(client, sync, path, fields)
    sync(lambda: client.post(_confirm_link(mail.outbox[0])))

    submission = FormSubmission.objects.get()
    assert submission.outcome["referral_refused"] == "self_referral"
    assert not Referral.objects.exists()


def test_self_referral_from_the_same_ip_is_refused_by_the_builtin_check(client, sync, newsletter):
    fraud_services.fraud_builtin_install()
    rule = FraudRule.objects.get(builtin_key="self_referral_ip_device")
    fraud_services.fraud_rule_save(rule=rule, is_enabled=True)
    referrer, _ = loyalty_services.member_join(customer=CustomerFactory(email="ada@example.com", signup_ip="127.0.0.1"))
    path = f"/me/r/{referrer.referral_code}/"
    fields = {**_form(client, path), "email": "sock-puppet@example.com", "consent_email": "on"}
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        _send(client, sync, path, fields)  # the test client's address is 127.0.0.1
    sync(lambda: client.post(_confirm_link(mail.outbox[0])))

    assert Referral.objects.get().status == ReferralStatus.REFUSED


def test_a_workflow_on_form_submitted_reads_the_form_fields(client, sync, newsletter, django_user_model):
    from apps.automations.services import workflow_activate, workflow_create
    from apps.tagging.models import CustomerTag

    user = django_user_model.objects.create_user("wf", password="x")
    workflow = workflow_create(
        name="Tag newsletter sign-ups by shoe size",
        definition={
            "schema": 1,
            "trigger": {"event": "form.submitted", "where": {"field": "form.name", "op": "eq", "value": "newsletter"}},
            "steps": [
                {
                    "id": "s1",
                    "if": {"field": "form.fields.shoe_size", "op": "eq", "value": "38"},
                    "then": [{"id": "s2", "action": "customer.add_tags", "params": {"tags": ["Size 38"]}}],
                    "else": [],
                }
            ],
        },
        user=user,
    )
    sync(lambda: workflow_activate(workflow=workflow, user=user))
    fields = {
        **_form(client, "/p/newsletter/"),
        "email": "ada@example.com",
        "attribute__shoe_size": "38",
        "consent_email": "on",
    }

    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        _send(client, sync, "/p/newsletter/", fields)

    assert list(CustomerTag.objects.values_list("customer__email", "tag__name")) == [("ada@example.com", "Size 38")]


def test_the_sms_box_needs_a_phone_number_and_then_asks_for_sms_opt_in_too(client, sync, newsletter):
    from apps.customers.consent.models import Consent

    fields = {**_form(client, "/p/newsletter/"), "email": "ada@example.com", "consent_email": "on", "consent_sms": "on"}
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        missing = _send(client, sync, "/p/newsletter/", fields)
        given = _send(client, sync, "/p/newsletter/", {**fields, "phone": "+351 912 345 678"})

    assert missing.status_code == 400 and "Give your phone number to receive text messages." in missing.content.decode()
    assert given.status_code == 302
    assert sorted(Consent.objects.values_list("channel", "status")) == [("email", "pending"), ("sms", "pending")]
    assert FormSubmission.objects.get().consents == ["email", "sms"]
