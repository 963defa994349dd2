"""The fraud review queue in Chromium, at 1440 px and 390 px: evidence shown, one click approves."""

import pytest

from apps.campaigns.fraud import services
from apps.campaigns.fraud.models import FraudCase
from apps.customers import services as customer_services
from apps.customers.models import DomainEvent

pytestmark = pytest.mark.django_db(transaction=True)

NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def test_reviewer_sees_the_evidence_and_approves_a_case(logged_in, live_server, screenshot):
    services.fraud_builtin_install()
    services.fraud_rule_save(
        name="Sign-up burst from one IP",
        trigger="customer.registered",
        condition={"field": "fraud.signups_same_ip", "window": {"minutes": 60}, "op": "gte", "value": 1},
        action="flag",
        is_enabled=True,
    )
    customer = customer_services.customer_create(email="burst@example.com", signup_ip="192.0.2.44")
    services.fraud_event_evaluate(event=DomainEvent.objects.get(name="customer.registered", customer=customer))
    case = FraudCase.objects.get()
    page = logged_in

    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(live_server.url + "/admin/campaigns/fraud/review/")
        evidence = page.inner_text(f"[data-testid=evidence-{case.pk}]")
        assert "fraud.signups_same_ip" in evidence and "last 60 minutes" in evidence
        assert page.evaluate(NO_OVERFLOW), f"horizontal overflow at {width} px"
        screenshot(f"fraud_review_{width}")

    page.fill(f"#note-{case.pk}", "Office network")
    page.click(f"[data-testid=approve-{case.pk}]")
    page.wait_for_selector(f"text=Case #{case.pk} approved.")
    case.refresh_from_db()
    customer.refresh_from_db()
    assert (case.status, case.note, customer.status) == ("approved", "Office network", "active")
