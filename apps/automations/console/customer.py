"""
The customer 360° page (read-only): everything the platform knows about one customer, each section shown to
a user who may read it, with every stored reference readable. Editing is the admin's change form.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.automations.choices import RunKind
from apps.automations.models import WorkflowRun
from apps.campaigns.models import SegmentMember
from apps.campaigns.promotions.models import Code
from apps.customers.consent import selectors as consent_selectors
from apps.customers.models import Customer, Order, Refund
from apps.loyalty.models import LedgerEntry, Membership, Redemption
from apps.loyalty.selectors import tier_progress
from apps.tagging.models import CustomerTag
from loyalty_site.lib.money import money_format, shop_currency

ROWS = 20


def _loyalty(customer: Customer, user: Any) -> list[dict[str, Any]]:
    if not user.has_perm("loyalty.view_membership"):
        return []
    memberships = list(
        Membership.objects.filter(customer=customer).select_related("program", "tier", "balance").order_by("pk")
    )
    sections = []
    for membership in memberships:
        entries = list(
            LedgerEntry.objects.filter(membership=membership)
            .select_related("actor")
            .order_by("-created_at", "-pk")[:ROWS]
        )
        redemptions = list(
            Redemption.objects.filter(membership=membership).select_related("reward").order_by("-issued_at")[:ROWS]
        )
        sections.append(
            {
                "membership": membership,
                "balance": getattr(membership, "balance", None),
                "progress": tier_progress(membership=membership),
                "entries": entries,
                "redemptions": redemptions,
            }
        )
    return sections


def customer_context(customer: Customer, user: Any) -> dict[str, Any]:
    """What the 360° page shows to `user`: bounded lists, a fixed number of queries whatever the history."""
    can = user.has_perm
    orders = (
        list(Order.objects.filter(customer=customer).select_related("store").order_by("-placed_at", "-pk")[:ROWS])
        if can("customers.view_order")
        else []
    )
    return {
        "customer": customer,
        "shop_currency": shop_currency(),
        "total_spent": money_format(customer.total_spent, shop_currency()),
        "refunded_total": money_format(customer.refunded_total, shop_currency()),
        "attributes": sorted((customer.attributes or {}).items()) if isinstance(customer.attributes, dict) else [],
        "can_edit": can("customers.change_customer"),
        "consents": consent_selectors.consent_overview(customer) if can("customers.view_consent") else None,
        "consent_history": consent_selectors.consent_history(customer, limit=ROWS)
        if can("customers.view_consentevent")
        else None,
        "tags": list(
            CustomerTag.objects.filter(customer=customer).select_related("tag", "added_by").order_by("-added_at")
        )
        if can("tagging.view_customertag")
        else None,
        "segments": list(
            SegmentMember.objects.filter(customer=customer).select_related("segment").order_by("segment__name")
        )
        if can("campaigns.view_segment")
        else None,
        "orders": orders,
        "orders_more": customer.orders_count > len(orders),
        "refunds": list(
            Refund.objects.filter(order__customer=customer).select_related("order").order_by("-created_at")[:ROWS]
        )
        if can("customers.view_order")
        else [],
        "loyalty": _loyalty(customer, user),
        "vouchers": list(Code.objects.filter(customer=customer).select_related("campaign").order_by("-pk")[:ROWS])
        if can("campaigns.view_code")
        else None,
        "runs": list(
            WorkflowRun.objects.filter(customer=customer)
            .exclude(kind=RunKind.TEST)
            .select_related("workflow")
            .order_by("-created_at", "-pk")[:ROWS]
        )
        if can("automations.view_workflowrun")
        else None,
    }


@staff_member_required
@permission_required("customers.view_customer", raise_exception=True)
def customer_360(request: HttpRequest, pk: int) -> HttpResponse:
    from django.contrib import admin

    customer = get_object_or_404(Customer, pk=pk)
    context = {
        **admin.site.each_context(request),
        "title": str(customer),
        **customer_context(customer, request.user),
    }
    return render(request, "console/customer.html", context)
