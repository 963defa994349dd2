"""The home page's live figures and recent activity, each shown only to a user who may read it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from apps.automations.choices import RunKind, RunStatus, WorkflowStatus
from apps.automations.models import Workflow, WorkflowRun
from apps.campaigns.models import Segment
from apps.customers.models import Customer, Order
from apps.loyalty.models import Membership
from apps.platform.models import AuditEntry
from loyalty_site.lib.money import money_format, shop_currency

RECENT = 8


def home_figures(user: Any) -> list[dict[str, Any]]:
    """The tiles of the home page: one or two aggregate queries each, none per row."""
    now = timezone.now()
    week = now - timedelta(days=7)
    day = now - timedelta(days=1)
    tiles: list[dict[str, Any]] = []
    if user.has_perm("customers.view_customer"):
        customers = Customer.objects.aggregate(total=Count("pk"), new=Count("pk", filter=Q(created_at__gte=week)))
        tiles.append(
            {
                "label": "Customers",
                "value": f"{customers['total']:,}",
                "detail": f"{customers['new']:,} new in 7 days",
                "url": reverse("admin:customers_customer_changelist"),
            }
        )
    if user.has_perm("customers.view_order"):
        orders = Order.objects.filter(placed_at__gte=week).aggregate(count=Count("pk"), revenue=Sum("total_shop"))
        tiles.append(
            {
                "label": "Orders, last 7 days",
                "value": f"{orders['count']:,}",
                "detail": money_format(orders["revenue"] or 0, shop_currency()),
                "url": reverse("admin:customers_order_changelist"),
            }
        )
    if user.has_perm("loyalty.view_membership"):
        members = Membership.objects.aggregate(total=Count("pk"), new=Count("pk", filter=Q(joined_at__gte=week)))
        tiles.append(
            {
                "label": "Loyalty members",
                "value": f"{members['total']:,}",
                "detail": f"{members['new']:,} joined in 7 days",
                "url": reverse("admin:loyalty_membership_changelist"),
            }
        )
    if user.has_perm("automations.view_workflow"):
        workflows = Workflow.objects.aggregate(
            active=Count("pk", filter=Q(status=WorkflowStatus.ACTIVE)), total=Count("pk")
        )
        runs = WorkflowRun.objects.filter(created_at__gte=day).exclude(kind=RunKind.TEST)
        counts = runs.aggregate(
            succeeded=Count("pk", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("pk", filter=Q(status__in=[RunStatus.FAILED, RunStatus.DEAD])),
        )
        tiles.append(
            {
                "label": "Active workflows",
                "value": f"{workflows['active']:,}",
                "detail": f"{counts['succeeded']:,} runs done, {counts['failed']:,} failed in 24 h",
                "url": reverse("automations:workflow_list") + "?status=active",
            }
        )
    if user.has_perm("campaigns.view_segment"):
        segments = Segment.objects.aggregate(active=Count("pk", filter=Q(is_active=True)))
        tiles.append(
            {
                "label": "Segments",
                "value": f"{segments['active']:,}",
                "detail": "active, members kept current",
                "url": reverse("admin:campaigns_segment_changelist"),
            }
        )
    return tiles


def recent_runs(user: Any) -> list[WorkflowRun]:
    if not user.has_perm("automations.view_workflowrun"):
        return []
    return list(
        WorkflowRun.objects.exclude(kind=RunKind.TEST)
        .select_related("workflow", "customer")
        .order_by("-created_at", "-pk")[:RECENT]
    )


def recent_changes(user: Any) -> list[AuditEntry]:
    if not user.has_perm("platform.view_auditentry"):
        return []
    return list(AuditEntry.objects.select_related("actor").order_by("-created_at", "-pk")[:RECENT])


def quick_actions(user: Any) -> list[dict[str, str]]:
    actions = [
        ("automations.add_workflow", "New workflow", reverse("automations:builder_new")),
        ("automations.add_workflow", "Install a template", reverse("automations:gallery")),
        ("campaigns.add_segment", "New segment", reverse("admin:campaigns_segment_add")),
        ("platform.confirm_redemption", "Scan a code", reverse("loyalty-staff-scan")),
    ]
    return [{"label": label, "url": url} for perm, label, url in actions if user.has_perm(perm)]
