"""The one parser of the workflows and campaigns reports' parameters (subject and window), pages and API alike."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.automations import services as workflow_services
from apps.reports.periods import lift_query_from
from tests.automations.test_engine_support import definition
from tests.campaigns.promo_helpers import campaign_with

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss():
    client = APIClient()
    client.force_login(UserFactory(username="boss"))
    return client


def test_the_parser_reads_the_subject_and_the_window_and_collects_every_problem():
    workflow = workflow_services.workflow_create(name="W", definition=definition("event.custom", []))
    campaign = campaign_with("C", incentives=[{"kind": "fixed_order", "amount": Decimal("5")}])

    chosen = lift_query_from({"workflow": f" {workflow.pk} ", "window": "14"}, subject="workflow")
    assert (chosen.subject, chosen.window, chosen.problems) == (workflow, 14, [])
    assert lift_query_from({"campaign": str(campaign.pk)}, subject="campaign").subject == campaign
    assert lift_query_from({}, subject="campaign").subject is None
    assert lift_query_from({}, subject="campaign").window == 7

    bad = lift_query_from({"workflow": "abc", "window": "0"}, subject="workflow")
    assert (bad.subject, bad.window) == (None, 7)
    assert [(p.path, p.message) for p in bad.problems] == [
        ("workflow", "workflow: no workflow with this id."),
        ("window", "window: a whole number of days from 1 to 90."),
    ]
    # a campaign id is not a workflow id, and a 20-digit id is refused without a query
    assert [p.path for p in lift_query_from({"campaign": "9" * 20}, subject="campaign").problems] == ["campaign"]


@pytest.mark.parametrize("report, subject", [("workflows", "workflow"), ("campaigns", "campaign")])
def test_both_pages_and_both_endpoints_answer_bad_parameters_alike(boss, report, subject):
    page = boss.get(f"/admin/reports/{report}/?{subject}=abc&window=91")
    assert page.status_code == 400
    assert page.content.decode() == (
        f"{subject}: no {subject} with this id. window: a whole number of days from 1 to 90."
    )
    api = boss.get(f"/api/v1/reports/{report}/?{subject}=abc&window=91")
    assert api.status_code == 400
    assert api.json()["errors"][0]["path"] == subject
    assert boss.get(f"/api/v1/reports/{report}/?window=91").json()["errors"][0]["path"] == "window"
    # the window chosen is kept in the page's CSV links even without a subject
    ok = boss.get(f"/admin/reports/{report}/?start=2026-03-01&end=2026-03-31&window=14")
    assert ok.status_code == 200
    assert ok.context["extra_inputs"] == [("window", 14)]
    assert b"&amp;window=14&amp;csv=" in ok.content
