"""
Promotions as an outbox consumer (`apps.customers.outbox`): when an order arrives (orders API, import, connectors)
with the checkout session or the codes its promotions were redeemed under, the redemption is linked to the order
(`tasks.domain_event_consume` → `promotions.services.redemption_link_order`), and the active automatic campaigns that
only multiply points apply to it (`order_automatic_multipliers`). An order that names no session, no code and no
redemption's order reference, while no such campaign is active, gets its receipt at once, without a queue round trip.
"""

from apps.customers.models import DomainEvent, Order
from apps.customers.outbox import OutboxConsumer, outbox_consumer_register

CONSUMER = "promotions"
ORDER_CREATED = "order.created"


def event_wanted(event: DomainEvent) -> bool:
    """Whether the order could link a redemption (one indexed read of the order, and of redemptions by ref)."""
    from .promotions.models import Redemption

    order_id = (event.payload or {}).get("order_id")
    if not isinstance(order_id, int):
        return False
    order = Order.objects.filter(pk=order_id).values("checkout_session", "discount_codes", "external_id").first()
    if order is None:
        return False
    if order["checkout_session"] or order["discount_codes"]:
        return True
    from .promotions.services import automatic_multiplier_campaign_ids

    if automatic_multiplier_campaign_ids():
        return True  # an automatic "double points" campaign may apply to the order (order_automatic_multipliers)
    return (
        bool(order["external_id"])
        and Redemption.objects.filter(order_ref=order["external_id"], order__isnull=True).exists()
    )


def connect() -> None:
    outbox_consumer_register(
        OutboxConsumer(
            name=CONSUMER,
            task="apps.campaigns.tasks.domain_event_consume",
            events=frozenset({ORDER_CREATED}),
            wants=event_wanted,
        )
    )
