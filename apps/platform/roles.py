"""
Roles are Django groups. Their permissions are declared here once, as `app_label.codename` patterns
(`*` wildcards), and applied by the data migration `0003_roles` and again after every `migrate`
(additively: a model added later joins the roles that match it; nothing granted by hand is removed).
"""

from fnmatch import fnmatchcase
from typing import Any

from . import capabilities as cap

DOMAIN_APPS = ("customers", "tagging", "loyalty", "campaigns", "automations", "reports", "connectors")
READ_ALL = [f"{app}.view_*" for app in DOMAIN_APPS]

ROLES: dict[str, list[str]] = {
    # Read-only: every list and page of the domain apps and the audit log; changes nothing.
    "analyst": [*READ_ALL, "platform.view_auditentry"],
    # Builds the marketing: tags, loyalty set-up, segments/campaigns, workflows (and activates them).
    "marketer": [
        *READ_ALL,
        "platform.view_auditentry",
        "tagging.*",
        "loyalty.add_program",
        "loyalty.change_program",
        "loyalty.*_earningrule",
        "loyalty.*_earningrulelimit",
        "loyalty.*_tier",
        "loyalty.*_reward",
        "loyalty.*_rewardtierprice",
        "campaigns.*",
        # Send governance: frequency caps, quiet hours, the priority window (audited).
        "customers.change_sendingpolicy",
        "automations.*_workflow",
        "automations.change_workflowrun",
        cap.ACTIVATE_WORKFLOW,
        cap.CAMPAIGN_KILL_SWITCH,
        # Connect shops (their webhooks feed the data plane) and re-process a failed delivery.
        "connectors.*",
        # Message templates (write, publish) and the brand.
        "customers.*_messagetemplate",
        "customers.*_templateversion",
        "customers.*_templatevariant",
        "customers.*_brand",
    ],
    # Helps customers: fixes contact data and tags, adjusts points, redeems and confirms codes.
    "support": [
        "customers.view_*",
        "tagging.view_*",
        "loyalty.view_*",
        "automations.view_workflow",
        "automations.view_workflowrun",
        "automations.view_workflowrunstep",
        "customers.change_customer",
        "customers.set_customer_status",
        # "Stop sending to this address": support suppresses an address or lifts a suppression.
        "customers.add_suppression",
        "customers.delete_suppression",
        "customers.change_order",
        "customers.add_refund",
        "tagging.add_customertag",
        "tagging.delete_customertag",
        "loyalty.add_membership",
        "loyalty.change_membership",
        "loyalty.change_redemption",
        "loyalty.add_referral",
        cap.AWARD_POINTS,
        cap.DEDUCT_POINTS,
        cap.REDEEM_FOR_CUSTOMER,
        cap.CONFIRM_REDEMPTION,
        "loyalty.rotate_cockpit_link",
        "campaigns.view_fraudcase",
        "campaigns.review_fraudcase",
    ],
    # A shop backend or POS calling the API: writes and reads the data plane, reads loyalty.
    "integration": [
        "customers.*",
        "tagging.view_tag",
        "tagging.add_tag",
        "tagging.view_customertag",
        "tagging.add_customertag",
        "tagging.delete_customertag",
        "loyalty.view_*",
        "loyalty.add_membership",
        "loyalty.add_referral",
        # The storefront widget: a token for the shop's signed-in customer.
        "loyalty.issue_widget_token",
        # The checkout validates, reserves, redeems and rolls back promotion codes (not their set-up).
        "campaigns.view_campaign",
        "campaigns.view_code",
        "campaigns.view_redemption",
        "campaigns.add_redemption",
        "campaigns.change_redemption",
        "campaigns.view_giftcard",  # a till checks a gift card's balance
    ],
    # Everything, including users, roles and API tokens.
    "admin": ["*"],
}


def role_permission_names(role: str, available: list[str]) -> list[str]:
    """The `app_label.codename` names among `available` that the role's patterns match."""
    patterns = ROLES[role]
    return [name for name in available if any(fnmatchcase(name, pattern) for pattern in patterns)]


def roles_apply(*, group_model: Any, permission_model: Any) -> dict[str, int]:
    """Create the role groups and add the permissions their patterns match; returns how many each gained."""
    permissions = list(permission_model.objects.select_related("content_type"))
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in permissions}
    added: dict[str, int] = {}
    for role in ROLES:
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = {by_name[name].pk for name in role_permission_names(role, sorted(by_name))}
        have = set(group.permissions.values_list("pk", flat=True))
        group.permissions.add(*(wanted - have))
        added[role] = len(wanted - have)
    return added
