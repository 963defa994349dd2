"""
Form sign-ups as an outbox consumer (`apps.customers.outbox`): when a customer confirms their e-mail (consent's
`customer.consent_confirmed`), their pending form submissions are completed (membership, voucher, referral).
An event of a customer with no pending submission gets its receipt at once.
"""

from apps.customers import outbox
from apps.customers.models import DomainEvent
from apps.customers.outbox import OutboxConsumer, outbox_consumer_register
from loyalty_site.lib.tasks import retry_transient

from .models import FormSubmission

CONSUMER = "landing"
CONSENT_CONFIRMED = "customer.consent_confirmed"


def event_wanted(event: DomainEvent) -> bool:
    return event.customer_id is not None and (
        FormSubmission.objects.filter(customer_id=event.customer_id, status="pending").exists()
    )


def consume(event_id: int) -> int:
    """Complete the pending submissions of the event's customer, then record the receipt. Returns how many."""
    from .services import form_submissions_confirm_for

    def run() -> int:
        event = DomainEvent.objects.filter(pk=event_id).first()
        if event is None:
            return 0
        done = 0
        if event.customer_id is not None and (event.payload or {}).get("channel", "email") == "email":
            done = len(form_submissions_confirm_for(customer_id=event.customer_id, at=event.created_at))
        outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
        return done

    return retry_transient(run, what=f"landing: outbox event {event_id}")


def connect() -> None:
    outbox_consumer_register(
        OutboxConsumer(
            name=CONSUMER,
            task="apps.campaigns.landing.consumer.consume",
            events=frozenset({CONSENT_CONFIRMED}),
            wants=event_wanted,
        )
    )
