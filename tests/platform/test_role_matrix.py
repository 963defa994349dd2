"""
Every role by every endpoint family: an allowed call answers 2xx, a forbidden one 403 and changes nothing.

The roles are the groups the `platform` migration creates; `staff` is a staff user with no role (is_staff
alone authorises nothing).
"""

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.automations.models import Workflow, WorkflowRun
from apps.campaigns import services as campaign_services
from apps.campaigns.models import Segment
from apps.customers.models import Customer, CustomerEvent, DomainEvent, Order, Refund
from apps.loyalty import services as loyalty_services
from apps.loyalty.models import LedgerEntry, Membership, Redemption, Reward
from apps.tagging.models import CustomerTag
from tests.automations.test_engine_support import add_tags, definition
from tests.factories import CustomerFactory, UserFactory, make_order
from tests.loyalty.conftest import program_make

pytestmark = pytest.mark.django_db

ROLES = ["analyst", "marketer", "support", "integration", "admin", "staff"]
READERS = {"analyst", "marketer", "support", "integration", "admin"}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # formatted with the world's ids
    body: Any
    allowed: frozenset[str]


def case(name: str, method: str, path: str, body: Any, *allowed: str) -> Case:
    return Case(name, method, path, body, frozenset(allowed))


CASES = [
    # data plane (ingest)
    case("customers.list", "get", "/api/v1/customers/", None, *READERS),
    case("customers.create", "post", "/api/v1/customers/", {"external_id": "n-1"}, "integration", "admin"),
    case(
        "customers.update",
        "patch",
        "/api/v1/customers/{customer}/",
        {"first_name": "Zed"},
        "support",
        "integration",
        "admin",
    ),
    case("customers.delete", "delete", "/api/v1/customers/{bare}/", None, "integration", "admin"),
    case(
        "customers.add_tags",
        "post",
        "/api/v1/customers/{customer}/add_tags/",
        {"tags": ["VIP"]},
        "marketer",
        "support",
        "integration",
        "admin",
    ),
    case(
        "orders.create",
        "post",
        "/api/v1/orders/",
        {
            "external_id": "o-9",
            "customer_id": "{customer}",
            "currency": "USD",
            "lines": [{"title": "Tea", "quantity": 1, "unit_price": "5.00"}],
        },
        "integration",
        "admin",
    ),
    case("orders.cancel", "post", "/api/v1/orders/{order}/cancel/", {}, "support", "integration", "admin"),
    case(
        "orders.refund",
        "post",
        "/api/v1/orders/{order}/refunds/",
        {"amount": "1.00", "reason": "dent"},
        "support",
        "integration",
        "admin",
    ),
    case(
        "events.create",
        "post",
        "/api/v1/events/",
        {"customer_id": "{customer}", "name": "review_posted"},
        "integration",
        "admin",
    ),
    case("products.list", "get", "/api/v1/products/", None, *READERS),
    # loyalty
    case("programs.list", "get", "/api/v1/loyalty/programs/", None, *READERS),
    case(
        "rewards.create",
        "post",
        "/api/v1/loyalty/rewards/",
        {"program": "{program}", "name": "Ship", "kind": "free_shipping", "points_cost": 50},
        "marketer",
        "admin",
    ),
    case("member.retrieve", "get", "/api/v1/loyalty/customers/{customer}/", None, *READERS),
    case(
        "member.award",
        "post",
        "/api/v1/loyalty/customers/{customer}/award/",
        {"points": 1000000, "reason": "x"},
        "support",
        "admin",
    ),
    case(
        "member.deduct",
        "post",
        "/api/v1/loyalty/customers/{customer}/deduct/",
        {"points": 10, "reason": "x"},
        "support",
        "admin",
    ),
    case(
        "member.redeem",
        "post",
        "/api/v1/loyalty/customers/{customer}/redeem/",
        {"reward": "{reward}"},
        "support",
        "admin",
    ),
    case(
        "redemptions.use",
        "post",
        "/api/v1/loyalty/redemptions/use/",
        {"code": "{code}", "channel": "store"},
        "support",
        "admin",
    ),
    case("redemptions.rollback", "post", "/api/v1/loyalty/redemptions/{redemption}/rollback/", {}, "support", "admin"),
    # workflows
    case("workflows.list", "get", "/api/v1/workflows/", None, "analyst", "marketer", "support", "admin"),
    case(
        "workflows.create",
        "post",
        "/api/v1/workflows/",
        {"name": "New", "definition": definition("order.created", [add_tags("X")])},
        "marketer",
        "admin",
    ),
    case("workflows.activate", "post", "/api/v1/workflows/{workflow}/activate/", None, "marketer", "admin"),
    case("workflow_runs.list", "get", "/api/v1/workflow-runs/", None, "analyst", "marketer", "support", "admin"),
    case(
        "templates.install",
        "post",
        "/api/v1/workflow-templates/high_value/install/",
        {"params": {"tag": "Whale"}},
        "marketer",
        "admin",
    ),
    # campaigns
    case("segments.list", "get", "/api/v1/segments/", None, "analyst", "marketer", "admin"),
    case("segments.create", "post", "/api/v1/segments/", {"name": "All", "condition": None}, "marketer", "admin"),
]


def _world() -> dict[str, Any]:
    program = program_make()
    customer = CustomerFactory(email="ana@example.com")
    membership, _ = loyalty_services.member_join(customer=customer, program=program)
    loyalty_services.points_award(membership=membership, points=500, reason="seed")
    reward = Reward.objects.create(program=program, name="10%", kind="percentage_discount", value=10, points_cost=80)
    redemption = loyalty_services.reward_redeem(membership=membership, reward=reward)
    order = make_order(customer, total="20.00")
    workflow = Workflow.objects.create(name="Draft", definition=definition("order.created", [add_tags("A")]))
    from apps.automations import services as workflow_services

    workflow_services.workflow_update(workflow=workflow, name="Draft")
    campaign_services.segment_create(name="Existing", condition=None)
    return {
        "program": program.pk,
        "customer": customer.pk,
        "bare": CustomerFactory().pk,
        "reward": reward.pk,
        "redemption": redemption.pk,
        "code": redemption.code,
        "order": order.pk,
        "workflow": workflow.pk,
    }


def snapshot() -> dict[str, Any]:
    """Everything a forbidden call could have changed."""
    return {
        "customers": list(Customer.objects.order_by("pk").values_list("pk", "first_name", "state")),
        "orders": list(Order.objects.order_by("pk").values_list("pk", "status", "refunded_total")),
        "refunds": Refund.objects.count(),
        "events": CustomerEvent.objects.count(),
        "outbox": DomainEvent.objects.count(),
        "customer_tags": CustomerTag.objects.count(),
        "memberships": Membership.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "redemptions": list(Redemption.objects.order_by("pk").values_list("pk", "status")),
        "rewards": Reward.objects.count(),
        "workflows": list(Workflow.objects.order_by("pk").values_list("pk", "name", "status")),
        "runs": WorkflowRun.objects.count(),
        "segments": list(Segment.objects.order_by("pk").values_list("pk", "name")),
    }


def _fill(value: Any, world: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in world:
        return world[value[1:-1]]
    if isinstance(value, dict):
        return {key: _fill(item, world) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, world) for item in value]
    return value


def client_for(role: str) -> APIClient:
    user = UserFactory(username=f"{role}-user", is_staff=True, is_superuser=False)
    if role != "staff":
        user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_role_matrix(role: str, case: Case, django_capture_on_commit_callbacks):
    world = _world()
    client = client_for(role)
    before = snapshot()

    response = getattr(client, case.method)(case.path.format(**world), _fill(case.body, world), format="json")

    if role in case.allowed:
        assert 200 <= response.status_code < 300, (role, case.name, response.status_code, response.content)
    else:
        assert response.status_code == 403, (role, case.name, response.status_code, response.content)
        assert response.json()["error"] == "permission_denied"
        assert snapshot() == before


def test_every_case_is_allowed_to_admin_and_refused_to_a_staff_user_without_a_role():
    assert all("admin" in c.allowed and "staff" not in c.allowed for c in CASES)
