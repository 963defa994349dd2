"""
The marketer, staff and customer pages under the production Content-Security-Policy: nothing is blocked.

The live server answers with `loyalty_site.settings.security`'s policy (the one production.py serves);
Chromium reports every blocked script, style, image or connection as a `securitypolicyviolation` event
and a console error, both collected here.
"""

from decimal import Decimal

import pytest

from apps.automations.gallery import template_install
from apps.loyalty import services as loyalty_services
from apps.loyalty.cockpit import cockpit_path
from apps.loyalty.models import Reward, Tier
from loyalty_site.settings.security import PRODUCTION_CONTENT_SECURITY_POLICY, PRODUCTION_PERMISSIONS_POLICY
from tests.factories import CustomerFactory
from tests.loyalty.conftest import program_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def production_csp(settings):
    settings.CONTENT_SECURITY_POLICY = PRODUCTION_CONTENT_SECURITY_POLICY
    settings.PERMISSIONS_POLICY = PRODUCTION_PERMISSIONS_POLICY
    return settings


def visit(page, url, console_errors):
    response = page.goto(url)
    page.wait_for_load_state("load")
    assert response.status == 200, url
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "camera=(self)" in response.headers["permissions-policy"]
    violations = page.evaluate("window.__cspViolations")
    csp_errors = [text for text in console_errors if "Content Security Policy" in text]
    return violations, csp_errors


def test_every_console_page_runs_under_the_production_csp(live_server, production_csp, logged_in, sync_worker):
    page = logged_in
    page.add_init_script(COLLECT_VIOLATIONS)
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    workflow = template_install(key="first_time_buyer", params={}, user=None)
    program = program_make(name="Coffee Club", referrer_bonus=100, referee_bonus=50)
    Tier.objects.create(program=program, name="Bronze", rank=1, threshold=Decimal("0"))
    Tier.objects.create(program=program, name="Silver", rank=2, threshold=Decimal("500"))
    membership, _ = loyalty_services.member_join(customer=CustomerFactory(first_name="Ada"), program=program)
    loyalty_services.points_award(membership=membership, points=300, reason="Welcome")
    reward = Reward.objects.create(program=program, name="Free espresso", kind="free_product", points_cost=120)
    redemption = loyalty_services.reward_redeem(membership=membership, reward=reward, cause="test")

    pages = [
        "/admin/",
        "/admin/automations/builder/",
        "/admin/automations/builder/new/",
        f"/admin/automations/builder/{workflow.pk}/",
        f"/admin/automations/builder/{workflow.pk}/versions/",
        "/admin/automations/gallery/",
        "/admin/automations/runs/",
        "/admin/automations/workflow/",
        f"/admin/automations/workflow/{workflow.pk}/change/",
        "/admin/customers/customer/",
        f"/admin/customers/customer/{membership.customer_id}/change/",
        f"/admin/loyalty/scan/?code={redemption.code}",
        "/api/docs/",
        cockpit_path(membership),
        f"/me/r/{membership.referral_code}/",
    ]
    seen = {}
    for path in pages:
        console_errors.clear()
        seen[path] = visit(page, live_server.url + path, console_errors)

    assert {path: found for path, found in seen.items() if found != ([], [])} == {}

    # What the allowed scripts and styles draw: the builder's cards, Swagger UI, the cockpit's tier bar.
    page.goto(live_server.url + f"/admin/automations/builder/{workflow.pk}/")
    assert page.locator(".wf-card").first.is_visible()
    page.goto(live_server.url + "/api/docs/")
    assert page.locator(".swagger-ui .info .title").first.inner_text().startswith("Loyalty Site API")
    page.goto(live_server.url + cockpit_path(membership))
    assert page.locator(".bar > span").evaluate("element => element.getBoundingClientRect().width") > 0
    assert page.evaluate("window.__cspViolations") == []
