from django.db.models import QuerySet

from ..models import Customer
from .addresses import address_normalise
from .filters import SuppressionFilter
from .models import Consent, ConsentEvent, Suppression


def consent_history(customer: Customer, *, limit: int = 100) -> list[ConsentEvent]:
    """The customer's consent changes, newest first (the customer 360° page)."""
    return list(ConsentEvent.objects.filter(customer_id=customer.pk).order_by("-created_at", "-pk")[:limit])


def consents_for(customer: Customer) -> list[Consent]:
    return list(Consent.objects.filter(customer_id=customer.pk).order_by("channel", "purpose"))


def suppression_list(*, filters: dict | None = None) -> QuerySet[Suppression]:
    queryset = Suppression.objects.all().order_by("-created_at", "-pk")
    return SuppressionFilter(filters or {}, queryset=queryset).qs


def suppression_exists(*, address: str, channel: str) -> bool:
    return Suppression.objects.filter(channel=channel, address=address_normalise(address, channel=channel)).exists()
