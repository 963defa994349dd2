from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from ..models import Customer
from .addresses import address_normalise
from .choices import Channel, ConsentStatus, Purpose
from .filters import SuppressionFilter
from .models import Consent, ConsentEvent, Suppression
from .rules import effective_status


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


@dataclass(frozen=True)
class ConsentLine:
    """One channel x purpose as the customer page shows it: the effective status and where it came from."""

    channel: str
    purpose: str
    status: str | None
    source: str
    since: datetime | None
    suppressed: bool

    @property
    def label(self) -> str:
        return f"{Channel(self.channel).label} · {Purpose(self.purpose).label.lower()}"

    @property
    def status_label(self) -> str:
        if self.status is None:
            return "No consent" if self.purpose == Purpose.MARKETING else "Allowed (transactional)"
        return str(ConsentStatus(self.status).label)


def consent_overview(customer: Customer) -> list[ConsentLine]:
    """Every channel x purpose for one customer (two queries): recorded rows, else the legacy mirror."""
    rows = {(row.channel, row.purpose): row for row in Consent.objects.filter(customer_id=customer.pk)}
    addresses = {Channel.EMAIL.value: address_normalise(customer.email, channel=Channel.EMAIL)}
    addresses[Channel.SMS.value] = address_normalise(customer.phone, channel=Channel.SMS)
    suppressed = {
        (channel, address)
        for channel, address in Suppression.objects.filter(
            address__in=[address for address in addresses.values() if address]
        ).values_list("channel", "address")
    }
    lines = []
    for channel in Channel.values:
        for purpose in Purpose.values:
            row = rows.get((channel, purpose))
            status = effective_status(customer, row, channel=channel, purpose=purpose)
            since: datetime | None
            if row is not None:
                source, since = row.source, row.updated_at
            elif status is not None:  # read from the legacy mirror (Customer.accepts_marketing)
                source = "accepts_marketing flag"
                since = customer.unsubscribed_at if status == ConsentStatus.WITHDRAWN else None
            else:
                source, since = "", None
            lines.append(
                ConsentLine(
                    channel=channel,
                    purpose=purpose,
                    status=status,
                    source=source,
                    since=since,
                    suppressed=(channel, addresses.get(channel, "")) in suppressed,
                )
            )
    return lines
