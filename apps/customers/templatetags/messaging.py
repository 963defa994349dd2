"""
Messaging's template tags, used by its includes on pages other apps own (the cockpit, the customer 360°
page, the run page), so those pages only gain one include line each.
"""

from __future__ import annotations

from typing import Any

from django import template

from apps.customers.messaging import selectors
from apps.customers.models import Customer

register = template.Library()


@register.simple_tag
def cockpit_inbox(customer: Customer) -> dict[str, Any]:
    """The customer's in-app inbox: latest messages and the unread count (two queries)."""
    return {
        "messages": list(selectors.inbox_messages(customer=customer)[: selectors.INBOX_SIZE]),
        "unread": selectors.inbox_unread_count(customer=customer),
    }


@register.simple_tag
def customer_deliveries(customer: Customer, user: Any) -> list[Any] | None:
    """The customer's latest deliveries, for a user who may read them (None: the section is hidden)."""
    if not user.has_perm("customers.view_delivery"):
        return None
    return selectors.deliveries_for_customer(customer=customer)


@register.simple_tag
def run_deliveries(run: Any, user: Any) -> list[Any] | None:
    """The deliveries a workflow or bulk run made (its cause), for a user who may read them."""
    if not user.has_perm("customers.view_delivery"):
        return None
    kind = "bulk_run" if getattr(run, "kind", "") == "bulk" else "workflow_run"
    return selectors.deliveries_for_causes(causes=[f"{kind}:{run.pk}"])
