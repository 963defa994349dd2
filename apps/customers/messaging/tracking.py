"""
What the e-mail provider reports after a message left: django-anymail's normalized tracking events (from any
provider's tracking webhook, `webhooks.anymail_tracking`) recorded on the Delivery they are about, found by
the provider's message id (`Delivery.provider_message_id`, indexed).

- `bounced` (and `rejected` because the address bounced or is invalid): the address goes on the suppression
  list (hard bounce) and the delivery becomes `failed` (reason `invalid_address`, the provider's description).
- `complained` (and `rejected` as spam): the address goes on the suppression list (complaint); the delivery
  stays `sent` (it was delivered) with `complained_at`.
- `delivered` / `opened`: `delivered_at` / `opened_at` (the first time; an open implies delivery).

Every event also sets `provider_event` (the latest by the provider's timestamp). Replaying an event changes
nothing more. An event about a message we do not know still suppresses its address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.customers.consent import services as consent

from .choices import Channel, DeliveryReason, DeliveryStatus
from .models import Delivery

# anymail.signals.EventType / RejectReason values
HARD_BOUNCE_REJECTS = ("bounced", "invalid")
COMPLAINT_REJECTS = ("spam",)


@dataclass(frozen=True)
class TrackingEvent:
    """One provider event, as anymail normalizes it (the fields we use)."""

    event_type: str
    message_id: str = ""
    recipient: str = ""
    timestamp: datetime | None = None
    reject_reason: str = ""
    description: str = ""
    esp: str = ""

    def suppression(self) -> str | None:
        """The suppression reason this event means for its address, if any."""
        if self.event_type == "bounced" or (
            self.event_type == "rejected" and self.reject_reason in HARD_BOUNCE_REJECTS
        ):
            return "hard_bounce"
        if self.event_type == "complained" or (
            self.event_type == "rejected" and self.reject_reason in COMPLAINT_REJECTS
        ):
            return "complaint"
        return None


@transaction.atomic
def delivery_tracking_record(*, event: TrackingEvent) -> Delivery | None:
    """Record one provider event (see the module docstring); the delivery it is about, or None if unknown."""
    when = event.timestamp or timezone.now()
    delivery = None
    if event.message_id:
        delivery = (
            Delivery.objects.select_for_update()
            .filter(provider_message_id=str(event.message_id)[:255], channel=Channel.EMAIL)
            .order_by("pk")
            .first()
        )
    suppression = event.suppression()
    address = (event.recipient or (delivery.to if delivery else "") or "").strip()
    if suppression and address:
        consent.suppression_add(
            address=address, channel=Channel.EMAIL, reason=suppression, source=f"anymail:{event.esp}"[:64].lower()
        )
    if delivery is None:
        return None
    changed: list[str] = []

    def put(field: str, value: object) -> None:
        setattr(delivery, field, value)
        changed.append(field)

    if suppression == "hard_bounce" and delivery.status != DeliveryStatus.FAILED:
        put("status", DeliveryStatus.FAILED)
        put("reason", DeliveryReason.INVALID_ADDRESS)
        put("error", f"Bounced ({event.esp}): {event.description or event.reject_reason or 'no description'}"[:500])
    if suppression == "complaint" and delivery.complained_at is None:
        put("complained_at", when)
    if event.event_type in ("delivered", "opened") and delivery.delivered_at is None:
        put("delivered_at", when)
    if event.event_type == "opened" and delivery.opened_at is None:
        put("opened_at", when)
    newer = delivery.provider_event_at is None or when >= delivery.provider_event_at
    if newer and (delivery.provider_event, delivery.provider_event_at) != (event.event_type[:16], when):
        put("provider_event", event.event_type[:16])
        put("provider_event_at", when)
    if changed:
        delivery.save(update_fields=[*changed, "updated_at"])
    return delivery
