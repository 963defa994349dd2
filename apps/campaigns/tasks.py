"""Periodic jobs of the campaigns app (applied by `manage.py setup_schedules`)."""

from . import services


def segments_refresh_task() -> int:
    return services.segments_refresh_all()


def reservations_release_task() -> int:
    from .promotions.services import reservations_release_expired

    return reservations_release_expired()


def vouchers_expiring_task() -> int:
    from .automation import voucher_notice_days
    from .promotions.services import vouchers_expiring_announce

    return vouchers_expiring_announce(notice_days=voucher_notice_days())


def gift_cards_expire_task() -> int:
    from .promotions.gift_cards import gift_cards_expire

    return gift_cards_expire()


def campaign_owner_email_task(campaign_id: int, subject: str, body: str) -> int:
    """E-mail a campaign's owner (low code pool, budget threshold); 0 when the owner has no e-mail address."""
    from django.conf import settings
    from django.core.mail import send_mail

    from .promotions.models import Campaign

    campaign = Campaign.objects.select_related("owner").filter(pk=campaign_id).first()
    email = getattr(getattr(campaign, "owner", None), "email", "") if campaign else ""
    if not email:
        return 0
    return send_mail(subject[:200], body, settings.DEFAULT_FROM_EMAIL, [email])


def domain_event_consume(event_id: int) -> int:
    """
    Link the redemptions an arriving order paid for, then give it the automatic points-multiplier campaigns it did
    not redeem (promotions' outbox consumer); returns how many redemptions it linked or created.
    """
    from apps.customers import outbox
    from apps.customers.models import DomainEvent, Order
    from loyalty_site.lib.tasks import retry_transient

    from .promotions.services import order_automatic_multipliers, redemption_link_order
    from .receivers import CONSUMER

    def consume() -> int:
        event = DomainEvent.objects.filter(pk=event_id).only("pk", "payload").first()
        if event is None:
            return 0
        order_id = (event.payload or {}).get("order_id")
        order = Order.objects.filter(pk=order_id).first() if isinstance(order_id, int) else None
        linked = len(redemption_link_order(order=order)) if order is not None else 0
        if order is not None and order_automatic_multipliers(order=order) is not None:
            linked += 1
        outbox.domain_event_consumed(event_id=event.pk, consumer=CONSUMER)
        return linked

    return retry_transient(consume, what=f"promotions: outbox event {event_id}")


def order_multipliers_task(order_id: int) -> int:
    """The points multipliers of the redemptions linked to an order (a redeem naming an order that had arrived)."""
    from apps.customers.models import Order
    from loyalty_site.lib.tasks import retry_transient

    from .promotions.services import order_multipliers_award

    def award() -> int:
        order = Order.objects.filter(pk=order_id).first()
        return order_multipliers_award(order=order) if order is not None else 0

    return retry_transient(award, what=f"promotions: multipliers of order {order_id}")


PERIODIC_JOBS: list[dict[str, str]] = [
    {
        "name": "campaigns: release expired promotion reservations",
        "func": "apps.campaigns.tasks.reservations_release_task",
        "cron": "* * * * *",
    },
    {
        "name": "campaigns: announce expiring vouchers",
        "func": "apps.campaigns.tasks.vouchers_expiring_task",
        "cron": "0 8 * * *",
    },
    {
        "name": "campaigns: expire gift cards past their date",
        "func": "apps.campaigns.tasks.gift_cards_expire_task",
        "cron": "15 * * * *",
    },
    {
        "name": "campaigns: refresh segments",
        "func": "apps.campaigns.tasks.segments_refresh_task",
        "cron": "*/30 * * * *",
    },
]
