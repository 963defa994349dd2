"""
Domain signals of the data plane. Each is sent once, after the writing transaction commits, with
`event` (the outbox row, `customers.DomainEvent`), `customer`, and the objects named below. Receivers only record
and enqueue; they hold no business logic.
"""

from django.dispatch import Signal

customer_registered = Signal()  # customer
customer_activated = Signal()  # customer
customer_unsubscribed = Signal()  # customer
customer_consent_confirmed = Signal()  # customer (double opt-in confirmed)
customer_updated = Signal()  # customer, fields (the names of the changed fields)
order_created = Signal()  # order
order_cancelled = Signal()  # order
order_refunded = Signal()  # order, refund
order_updated = Signal()  # order (edited after it was placed: lines or amounts)
product_purchased = Signal()  # order, line, product
draft_order_created = Signal()  # draft_order
cart_abandoned = Signal()  # cart
custom_event_received = Signal()  # custom_event
customer_location_reported = Signal()  # customer, store, latitude, longitude, distance_m

# Trigger name (as used in workflow definitions) for each signal.
TRIGGER_NAMES: dict[Signal, str] = {
    customer_registered: "customer.registered",
    customer_activated: "customer.activated",
    customer_unsubscribed: "customer.unsubscribed",
    customer_consent_confirmed: "customer.consent_confirmed",
    customer_updated: "customer.updated",
    order_created: "order.created",
    order_cancelled: "order.cancelled",
    order_refunded: "order.refunded",
    order_updated: "order.updated",
    product_purchased: "product.purchased",
    draft_order_created: "draft_order.created",
    cart_abandoned: "cart.abandoned",
    custom_event_received: "event.custom",
    customer_location_reported: "customer.near_store",
}
