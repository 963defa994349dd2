"""The audit log: who (user, API token), when, which object, what action, old and new values."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from apps.automations import services as workflow_services
from apps.campaigns import services as campaign_services
from apps.loyalty.models import Program
from apps.platform.models import AuditEntry
from apps.platform.services import api_token_create, api_token_revoke
from tests.automations.test_engine_support import add_tags, definition
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def entries(object_type: str) -> list[tuple]:
    return list(
        AuditEntry.objects.filter(object_type=object_type)
        .order_by("pk")
        .values_list("action", "actor_label", "changes")
    )


def test_workflow_create_edit_activate_pause_are_audited_with_who_and_old_new_values():
    ana = UserFactory(username="ana")
    workflow = workflow_services.workflow_create(
        name="Welcome", definition=definition("order.created", [add_tags("A")]), user=ana
    )
    workflow_services.workflow_update(workflow=workflow, name="Welcome back", user=ana)
    workflow = workflow_services.workflow_activate(workflow=workflow, user=ana)
    workflow_services.workflow_pause(workflow=workflow, user=ana)

    log = entries("automations.workflow")
    assert [(action, actor) for action, actor, _ in log] == [
        ("created", "ana"),
        ("updated", "ana"),
        ("activated", "ana"),
        ("paused", "ana"),
    ]
    assert log[0][2]["name"] == {"old": None, "new": "Welcome"}
    assert log[1][2] == {"name": {"old": "Welcome", "new": "Welcome back"}}
    assert log[2][2] == {
        "status": {"old": "draft", "new": "active"},
        "current_version_id": {"old": None, "new": workflow.current_version_id},
    }
    assert log[3][2] == {"status": {"old": "active", "new": "paused"}}


def test_a_refused_change_leaves_no_entry():
    workflow = workflow_services.workflow_create(name="W", definition=definition("order.created", [add_tags("A")]))
    before = AuditEntry.objects.count()

    with pytest.raises(ValidationError, match="Only an active workflow can be paused"):
        workflow_services.workflow_pause(workflow=workflow)

    assert AuditEntry.objects.count() == before


def test_api_changes_name_the_user_and_the_token():
    user = UserFactory(username="shop-admin", is_superuser=False)
    user.groups.add(Group.objects.get(name="admin"))
    token, raw = api_token_create(user=user, scopes=["campaigns", "loyalty:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    created = client.post("/api/v1/segments/", {"name": "Everyone", "condition": None}, format="json")
    client.patch(f"/api/v1/segments/{created.json()['id']}/", {"name": "All customers"}, format="json")
    program = client.post("/api/v1/loyalty/programs/", {"name": "Club", "slug": "club"}, format="json")
    client.patch(f"/api/v1/loyalty/programs/{program.json()['id']}/", {"name": "Club+"}, format="json")

    segment_log = AuditEntry.objects.filter(object_type="campaigns.segment").order_by("pk")
    assert [(e.action, e.actor_id, e.token_id) for e in segment_log] == [
        ("created", user.pk, token.pk),
        ("updated", user.pk, token.pk),
    ]
    assert segment_log[1].changes == {"name": {"old": "Everyone", "new": "All customers"}}
    assert segment_log[1].actor_label == f"shop-admin (API token {token.prefix}…)"
    program_log = entries("loyalty.program")
    assert [action for action, _, _ in program_log] == ["created", "updated"]
    assert program_log[1][2] == {"name": {"old": "Club", "new": "Club+"}}


def test_tokens_created_and_revoked_are_audited():
    user = UserFactory(username="ops")
    with time_machine.travel(datetime(2026, 7, 1, 9, 0, tzinfo=UTC), tick=False):
        token, _ = api_token_create(user=user, scopes=["ingest"])
        api_token_revoke(token=token)

    log = entries("platform.apitoken")
    assert [action for action, _, _ in log] == ["created", "revoked"]
    assert log[0][2]["scopes"] == {"old": None, "new": ["ingest"]}
    assert "digest" not in log[0][2]
    assert log[1][2] == {"revoked_at": {"old": None, "new": "2026-07-01T09:00:00Z"}}


def test_role_membership_and_role_permissions_are_audited():
    user = UserFactory(username="bob", is_superuser=False)
    marketer = Group.objects.get(name="marketer")

    user.groups.add(marketer)
    user.groups.remove(marketer)
    Group.objects.get(name="analyst").user_set.add(user)

    log = entries("auth.user")
    assert log == [
        ("roles_changed", "system", {"groups": {"old": [], "new": ["marketer"]}}),
        ("roles_changed", "system", {"groups": {"old": ["marketer"], "new": []}}),
        ("roles_changed", "system", {"groups": {"old": [], "new": ["analyst"]}}),
    ]


def test_admin_edits_of_loyalty_set_up_are_audited_with_the_admin_user(admin_client, admin_user):
    program = Program.objects.create(name="Club", slug="club", currency="USD")
    url = reverse("admin:loyalty_program_change", args=[program.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None and not isinstance(value, list)}
    data.update({"name": "Club Gold"})
    for formset in admin_client.get(url).context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for key, value in management.initial.items():
            data[f"{management.prefix}-{key}"] = value

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    log = entries("loyalty.program")
    assert log == [("updated", admin_user.username, {"name": {"old": "Club", "new": "Club Gold"}})]


def test_the_audit_log_is_read_only_and_filterable_in_the_admin(admin_client):
    campaign_services.segment_create(name="Everyone")
    workflow_services.workflow_create(name="W", definition=definition("order.created", [add_tags("A")]))

    listing = admin_client.get(reverse("admin:platform_auditentry_changelist"), {"object_type": "campaigns.segment"})
    add = admin_client.get(reverse("admin:platform_auditentry_add"))

    assert listing.status_code == 200
    assert [entry.object_type for entry in listing.context["cl"].result_list] == ["campaigns.segment"]
    assert add.status_code == 403


def test_tiers_saved_through_the_ladder_service_are_audited_once_per_change(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    program = Program.objects.create(name="Club", slug="club", currency="USD")

    created = client.post(
        "/api/v1/loyalty/tiers/", {"program": program.pk, "name": "Silver", "rank": 1, "threshold": "100"}
    )
    client.patch(f"/api/v1/loyalty/tiers/{created.json()['id']}/", {"name": "Silver+"})

    log = entries("loyalty.tier")
    assert [(action, actor) for action, actor, _ in log] == [
        ("created", admin_user.username),
        ("updated", admin_user.username),
    ]
    assert log[1][2] == {"name": {"old": "Silver", "new": "Silver+"}}


def test_earning_rules_saved_through_their_services_are_audited_once_per_change(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    program = Program.objects.create(name="Club", slug="club", currency="USD")

    created = client.post(
        "/api/v1/loyalty/rules/",
        {"program": program.pk, "name": "Base", "kind": "per_amount", "points": 1},
        format="json",
    )
    client.patch(f"/api/v1/loyalty/rules/{created.json()['id']}/", {"points": 2}, format="json")

    log = entries("loyalty.earningrule")
    assert [action for action, _, _ in log] == ["created", "updated"]
    assert log[1][2] == {"points": {"old": "1.0000", "new": "2.0000"}}


def test_the_campaign_kill_switch_is_audited_with_who_and_why():
    from apps.campaigns.promotions import services as promotion_services

    eve = UserFactory(username="eve")
    promotion_services.kill_switch_set(on=True, user=eve, reason="fraud wave")
    promotion_services.kill_switch_set(on=False, user=eve)

    log = entries("platform.globalkillswitch")
    assert log == [
        ("kill_switch_on", "eve", {"is_on": {"old": False, "new": True}, "reason": {"old": "", "new": "fraud wave"}}),
        ("kill_switch_off", "eve", {"is_on": {"old": True, "new": False}, "reason": {"old": "fraud wave", "new": ""}}),
    ]
