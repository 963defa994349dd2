"""Reads of deliveries: a customer's latest, the cockpit inbox, a run's deliveries."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.customers.models import Customer

from .choices import Channel, DeliveryStatus
from .models import Delivery

INBOX_SIZE = 20


def deliveries_for_customer(*, customer: Customer, limit: int = 20) -> list[Delivery]:
    return list(Delivery.objects.filter(customer=customer).order_by("-created_at", "-pk")[:limit])


def deliveries_for_causes(*, causes: list[str], limit: int = 50) -> list[Delivery]:
    return list(Delivery.objects.filter(cause__in=causes).select_related("customer").order_by("pk")[:limit])


def inbox_messages(*, customer: Customer) -> QuerySet[Delivery]:
    """The customer's in-app messages (sent), newest first."""
    return Delivery.objects.filter(customer=customer, channel=Channel.IN_APP, status=DeliveryStatus.SENT).order_by(
        "-sent_at", "-pk"
    )


def inbox_unread_count(*, customer: Customer) -> int:
    return inbox_messages(customer=customer).filter(read_at__isnull=True).count()


def deliveries_list() -> QuerySet[Delivery]:
    return Delivery.objects.all().order_by("-created_at", "-pk")
