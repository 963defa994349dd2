"""
A campaign's holdout on the delivery side: customers in its stable holdout share get no code from it — not from a
segment publication, a workflow's issue-voucher step or the API — and are recorded once as held out.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.automations.models import WorkflowRunStep
from apps.automations.services import workflow_activate, workflow_create
from apps.campaigns import services as segment_services
from apps.campaigns.models import CampaignHoldout, Code
from apps.campaigns.promotions import codes as pool
from apps.campaigns.promotions import services
from apps.customers import services as customer_services
from loyalty_site.lib.errors import DomainError
from loyalty_site.lib.split import campaign_holdout_salt, held_out
from tests.campaigns.promo_helpers import campaign_with
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _campaign(name="Held", holdout=30, codes=100):
    campaign = campaign_with(
        name,
        holdout_percent=holdout,
        low_pool_threshold=0,
        incentives=[{"kind": "fixed_order", "amount": Decimal("5")}],
    )
    if codes:
        services.codes_generate(campaign=campaign, pattern=f"{name[:3].upper()}-#####", count=codes)
    return campaign


def _segment(name, people):
    for person in people:
        person.country = "PT"
        person.save(update_fields=["country"])
    segment = segment_services.segment_create(
        name=name, condition={"field": "customer.country", "op": "eq", "value": "PT"}
    )
    segment_services.segment_refresh(segment=segment)
    return segment


def _expected_held(campaign, people):
    return {person.pk for person in people if held_out(campaign_holdout_salt(campaign.pk), person.pk, 30)}


def test_a_segment_publication_gives_held_out_members_no_code_and_records_them_once():
    campaign = _campaign()
    people = [CustomerFactory() for _ in range(40)]
    segment = _segment("Portugal", people)
    held = _expected_held(campaign, people)
    assert 0 < len(held) < 40  # 30 % of 40 by a stable hash: a share, not no one or everyone

    result = pool.codes_publish_segment(campaign=campaign, segment=segment, ref="segment:1")

    assert (result.published, result.without_code, result.held_out) == (40 - len(held), 0, len(held))
    holders = set(Code.objects.filter(campaign=campaign, customer__isnull=False).values_list("customer_id", flat=True))
    assert holders == {person.pk for person in people} - held
    assert not holders & held  # no held-out customer holds a code of the campaign
    rows = CampaignHoldout.objects.filter(campaign=campaign)
    assert set(rows.values_list("customer_id", flat=True)) == held
    assert set(rows.values_list("ref", flat=True)) == {"segment:1"}

    # a second publication publishes nothing and records nobody twice
    again = pool.codes_publish_segment(campaign=campaign, segment=segment, ref="segment:2")
    assert (again.published, again.without_code, again.held_out) == (0, 0, len(held))
    assert CampaignHoldout.objects.filter(campaign=campaign).count() == len(held)
    assert set(rows.values_list("ref", flat=True)) == {"segment:1"}
    assert Code.objects.filter(campaign=campaign, customer__isnull=False).count() == 40 - len(held)


def test_the_publication_is_set_based_the_same_statements_for_20_or_60_members():
    small, large = _campaign("Small"), _campaign("Large")
    first = [CustomerFactory() for _ in range(20)]
    segment = _segment("Twenty", first)
    with CaptureQueriesContext(connection) as twenty:
        pool.codes_publish_segment(campaign=small, segment=segment, ref="a")
    more = [CustomerFactory() for _ in range(40)]
    segment = _segment("Sixty", first + more)
    with CaptureQueriesContext(connection) as sixty:
        pool.codes_publish_segment(campaign=large, segment=segment, ref="b")
    assert Code.objects.filter(campaign=large, customer__isnull=False).count() == 60 - len(
        {p.pk for p in first + more if held_out(campaign_holdout_salt(large.pk), p.pk, 30)}
    )
    assert len(sixty.captured_queries) == len(twenty.captured_queries)


def test_members_the_publication_never_reached_when_the_pool_ran_out_are_not_recorded():
    campaign = _campaign("Short", codes=5)
    people = [CustomerFactory() for _ in range(40)]
    segment = _segment("Many", people)
    held = _expected_held(campaign, people)
    receive = sorted(person.pk for person in people if person.pk not in held)
    last_served = receive[4]

    result = pool.codes_publish_segment(campaign=campaign, segment=segment, ref="s")

    reached_held = {pk for pk in held if pk < last_served}
    assert (result.published, result.held_out) == (5, len(reached_held))
    assert result.without_code == 40 - 5 - len(reached_held)
    assert set(CampaignHoldout.objects.values_list("customer_id", flat=True)) == reached_held
    assert set(Code.objects.filter(customer__isnull=False).values_list("customer_id", flat=True)) == set(receive[:5])


def test_a_single_publication_to_a_held_out_customer_is_refused_and_recorded():
    campaign = _campaign()
    people = [CustomerFactory() for _ in range(30)]
    kept_out = next(person for person in people if person.pk in _expected_held(campaign, people))
    served = next(person for person in people if person.pk not in _expected_held(campaign, people))

    with pytest.raises(DomainError) as refused:
        services.code_publish(campaign=campaign, customer=kept_out, ref="api:1:k")
    assert (refused.value.code, refused.value.path) == ("held_out", "customer")
    assert not Code.objects.filter(customer=kept_out).exists()
    assert list(CampaignHoldout.objects.values_list("customer_id", "ref")) == [(kept_out.pk, "api:1:k")]
    code = services.code_publish(campaign=campaign, customer=served, ref="api:1:s")
    assert code.customer_id == served.pk
    # without a holdout the same customer gets a code
    open_campaign = _campaign("Open", holdout=0)
    assert services.code_publish(campaign=open_campaign, customer=kept_out).customer_id == kept_out.pk


def test_the_api_answers_409_held_out_with_the_path_and_publish_segment_counts_them():
    user = UserFactory(username="marketer", is_staff=True, is_superuser=False)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="campaigns"))
    api = APIClient()
    api.force_authenticate(user)
    campaign = _campaign()
    people = [CustomerFactory() for _ in range(30)]
    held = _expected_held(campaign, people)
    kept_out = min(held)

    response = api.post(f"/api/v1/promotion-campaigns/{campaign.pk}/publish/", {"customer_id": kept_out}, format="json")

    assert response.status_code == 409
    assert [(error["code"], error["path"]) for error in response.json()["errors"]] == [("held_out", "customer")]
    assert not Code.objects.filter(customer_id=kept_out).exists()
    segment = _segment("All", people)
    body = api.post(
        f"/api/v1/promotion-campaigns/{campaign.pk}/publish-segment/", {"segment": segment.pk}, format="json"
    ).json()
    assert body == {"published": 30 - len(held), "without_code": 0, "held_out": len(held)}


def test_publishing_to_a_segment_without_permission_is_403_and_records_nothing():
    user = UserFactory(username="viewer", is_staff=True, is_superuser=False)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign", content_type__app_label="campaigns"))
    api = APIClient()
    api.force_authenticate(user)
    campaign = _campaign()
    segment = _segment("All", [CustomerFactory() for _ in range(10)])

    response = api.post(
        f"/api/v1/promotion-campaigns/{campaign.pk}/publish-segment/", {"segment": segment.pk}, format="json"
    )

    assert response.status_code == 403
    assert CampaignHoldout.objects.count() == 0
    assert Code.objects.filter(customer__isnull=False).count() == 0


def test_a_workflow_issue_voucher_step_skips_a_held_out_customer_and_says_so(
    settings, django_capture_on_commit_callbacks
):
    settings.TASKS_SYNC = True
    campaign = _campaign("Welcome")
    people = [CustomerFactory() for _ in range(30)]
    kept_out = next(person for person in people if person.pk in _expected_held(campaign, people))
    definition = {
        "schema": 1,
        "trigger": {"event": "event.custom"},
        "steps": [{"id": "s1", "action": "campaigns.issue_voucher", "params": {"campaign": "Welcome"}}],
    }
    workflow_activate(workflow=workflow_create(name="Give", definition=definition))

    with django_capture_on_commit_callbacks(execute=True):
        customer_services.custom_event_record(customer=kept_out, name="newsletter_signup")

    step = WorkflowRunStep.objects.get(run__customer=kept_out, step_id="s1")
    assert step.status == "succeeded"
    assert step.outcome["held_out"] is True and step.outcome["campaign"] == "Welcome"
    assert not Code.objects.filter(customer=kept_out).exists()
    assert CampaignHoldout.objects.filter(campaign=campaign, customer=kept_out).count() == 1


def test_a_landing_form_confirmation_gives_a_held_out_customer_no_voucher_and_says_why():
    from apps.campaigns.landing.models import FormSubmission
    from apps.campaigns.landing.services import form_submission_confirm
    from tests.campaigns.landing_helpers import form_block, published_page

    campaign = _campaign("Signup")
    people = [CustomerFactory() for _ in range(30)]
    kept_out = next(person for person in people if person.pk in _expected_held(campaign, people))
    page = published_page(blocks=[form_block(voucher_campaign=campaign.pk, join_program=False)])
    submission = FormSubmission.objects.create(
        page=page, version=page.published_version.number, customer=kept_out, consents=["email"]
    )

    confirmed = form_submission_confirm(submission=submission)

    assert (confirmed.status, confirmed.outcome) == ("confirmed", {"voucher_refused": "held_out"})
    assert not Code.objects.filter(customer=kept_out).exists()
    assert list(CampaignHoldout.objects.values_list("customer_id", "ref")) == [
        (kept_out.pk, f"form_submission:{submission.pk}")
    ]
