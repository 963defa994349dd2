"""
The console's navigation by task: one table, one line per page. Each entry names its page by URL name (or
path) and the permission(s) a user needs to see it; a section appears when the user may open one of its
entries, and its link goes to the first of them. Adding a page to the navigation is one `Entry(...)` line
here (see /work/notes/console.md). The entries are links only: every page checks its own permission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import NoReverseMatch, reverse

# "System" is for administrators: the technical models (idempotency keys, the outbox, the task queue, …).
ADMIN_PERMISSION = "auth.view_user"


@dataclass(frozen=True)
class Entry:
    """One page of the navigation: its label, URL name (or path) and the permissions needed to see it."""

    label: str
    url: str
    perms: tuple[str, ...] = ()
    # Any one of these is enough (a page several roles reach with different permissions).
    any_perms: tuple[str, ...] = ()
    # Other URL prefixes that belong to this entry (its detail pages), for the "you are here" mark.
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A task of the console (Automations, Loyalty, …) and its pages."""

    label: str
    entries: tuple[Entry, ...] = field(default_factory=tuple)


NAVIGATION: tuple[Section, ...] = (
    Section("Home", (Entry("Home", "admin:index"),)),
    Section(
        "Automations",
        (
            Entry("Workflows", "automations:workflow_list", ("automations.view_workflow",)),
            Entry("Template gallery", "automations:gallery", ("automations.view_workflow",)),
            Entry("Run history", "automations:run_list", ("automations.view_workflowrun",)),
        ),
    ),
    Section(
        "Loyalty",
        (
            Entry("Programs", "admin:loyalty_program_changelist", ("loyalty.view_program",)),
            Entry("Earning rules", "admin:loyalty_earningrule_changelist", ("loyalty.view_earningrule",)),
            Entry("Tiers", "admin:loyalty_tier_changelist", ("loyalty.view_tier",)),
            Entry("Rewards", "admin:loyalty_reward_changelist", ("loyalty.view_reward",)),
            Entry("Members", "admin:loyalty_membership_changelist", ("loyalty.view_membership",)),
            Entry("Redemptions", "admin:loyalty_redemption_changelist", ("loyalty.view_redemption",)),
            Entry("Referrals", "admin:loyalty_referral_changelist", ("loyalty.view_referral",)),
        ),
    ),
    Section(
        "Campaigns",
        (
            Entry("Campaigns", "admin:campaigns_campaign_changelist", ("campaigns.view_campaign",)),
            Entry("Codes", "admin:campaigns_code_changelist", ("campaigns.view_code",)),
            Entry("Gift cards", "admin:campaigns_giftcard_changelist", ("campaigns.view_giftcard",)),
            Entry("Redemptions log", "campaigns-redemptions", ("campaigns.view_redemption",)),
            Entry("Cart simulator", "campaigns-simulator", ("campaigns.view_campaign",)),
            Entry("Kill switch", "campaigns-kill-switch", ("campaigns.view_campaign",)),
            Entry(
                "Landing pages", "landing-list", ("campaigns.view_landingpage",), also=("/admin/campaigns/landing/",)
            ),
        ),
    ),
    Section(
        "Messages",
        (
            Entry(
                "Templates",
                "messaging-templates",
                ("customers.view_messagetemplate",),
                also=("/admin/messaging/templates/",),
            ),
            Entry("Brand", "messaging-brand", ("customers.view_brand",)),
        ),
    ),
    Section(
        "Segments",
        (
            Entry(
                "Segments",
                "admin:campaigns_segment_changelist",
                ("campaigns.view_segment",),
                also=("/admin/campaigns/segmentmember/",),
            ),
        ),
    ),
    Section(
        "Customers",
        (
            Entry(
                "Customers",
                "admin:customers_customer_changelist",
                ("customers.view_customer",),
                also=("/admin/console/customers/",),
            ),
            Entry("Orders", "admin:customers_order_changelist", ("customers.view_order",)),
            Entry("Tags", "admin:tagging_tag_changelist", ("tagging.view_tag",)),
            Entry("Exchange rates", "admin:customers_exchangerate_changelist", ("customers.view_exchangerate",)),
            Entry("Import CSV", "tagging-import", ("tagging.view_importjob",)),
            Entry(
                "Store connectors",
                "admin:connectors_storeconnection_changelist",
                ("connectors.view_storeconnection",),
                also=("/admin/connectors/",),
            ),
        ),
    ),
    Section(
        "Reports",
        (Entry("Audit log", "admin:platform_auditentry_changelist", ("platform.view_auditentry",)),),
    ),
    Section("Scan", (Entry("Scan a code", "loyalty-staff-scan", ("platform.confirm_redemption",)),)),
    Section(
        "System",
        (
            Entry("Users", "admin:auth_user_changelist", (ADMIN_PERMISSION,)),
            Entry("Roles", "admin:auth_group_changelist", ("auth.view_group", ADMIN_PERMISSION)),
            Entry("API tokens", "admin:platform_apitoken_changelist", ("platform.view_apitoken", ADMIN_PERMISSION)),
            Entry("All models", "admin:system", (ADMIN_PERMISSION,)),
        ),
    ),
)


def _url(entry: Entry) -> str | None:
    if entry.url.startswith("/"):
        return entry.url
    try:
        return reverse(entry.url)
    except NoReverseMatch:
        return None  # a page of an app that is not installed in this configuration


def _may_see(user: Any, entry: Entry) -> bool:
    if entry.perms and not user.has_perms(entry.perms):
        return False
    return not entry.any_perms or any(user.has_perm(name) for name in entry.any_perms)


def navigation_for(user: Any, path: str) -> list[dict[str, Any]]:
    """The sections and pages `user` may open; the page `path` belongs to (longest URL prefix) is marked current."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_staff", False):
        return []
    home = _url(NAVIGATION[0].entries[0])
    sections: list[dict[str, Any]] = []
    best_length, best_item, best_section = -1, None, None
    for section in NAVIGATION:
        entries: list[dict[str, Any]] = []
        item_section = {"label": section.label, "entries": entries, "current": False}
        for entry in section.entries:
            url = _url(entry)
            if url is None or not _may_see(user, entry):
                continue
            item = {"label": entry.label, "url": url, "current": False}
            entries.append(item)
            for prefix in (url, *entry.also):
                # The home page is current on itself only; every other page also on its sub-pages.
                matches = path == prefix if prefix == home else path.startswith(prefix)
                if matches and len(prefix) > best_length:
                    best_length, best_item, best_section = len(prefix), item, item_section
        if entries:
            item_section["url"] = entries[0]["url"]
            sections.append(item_section)
    if best_item is not None and best_section is not None:
        best_item["current"] = best_section["current"] = True
    return sections
