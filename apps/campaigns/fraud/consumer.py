"""
Fraud rules as an outbox consumer (`apps.customers.outbox`): after a sign-up, order, referral, membership or
code redemption commits, the outbox enqueues `consume(event_id)` when an enabled fraud rule listens to that
trigger (else the receipt is recorded at once). Loyalty never imports this: it only honours the status and
the holds this consumer writes through its services.
"""

from apps.customers import outbox
from apps.customers.models import DomainEvent
from apps.customers.outbox import OutboxConsumer, outbox_consumer_register
from loyalty_site.lib.tasks import retry_transient

from .choices import FraudTrigger
from .models import FraudRule

CONSUMER = "fraud"


def rules_listen(name: str) -> bool:
    return FraudRule.objects.filter(trigger=name, is_enabled=True).exists()


def consume(event_id: int) -> int:
    """Evaluate one outbox event against the enabled fraud rules, then record the receipt. Returns cases opened."""
    from .services import fraud_event_evaluate

    def run() -> int:
        event = DomainEvent.objects.filter(pk=event_id).first()
        if event is None:
            return 0
        opened = len(fraud_event_evaluate(event=event))
        outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
        return opened

    return retry_transient(run, what=f"fraud: outbox event {event_id}")


def connect() -> None:
    outbox_consumer_register(
        OutboxConsumer(
            name=CONSUMER,
            task="apps.campaigns.fraud.consumer.consume",
            events=frozenset(FraudTrigger.values),
            listens=rules_listen,
        )
    )
