"""The customer cockpit's links: revoke them (support), send a fresh one by e-mail, referral-page privacy."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from ..models import Membership, cockpit_nonce_generate

logger = logging.getLogger(__name__)


@transaction.atomic
def cockpit_links_revoke(*, membership: Membership, actor: object = None) -> Membership:
    """Every cockpit link sent so far stops working (the member's nonce is replaced)."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    membership.cockpit_nonce = cockpit_nonce_generate()
    membership.save(update_fields=["cockpit_nonce"])
    logger.info("cockpit links of membership %s revoked by %s", membership.pk, actor or "system")
    return membership


def cockpit_links_send(*, email: str, link_for: Callable[[Membership], str]) -> int:
    """
    E-mail every membership of the customers with this address a fresh cockpit link (`link_for` builds
    the absolute URL). Returns how many links were sent; the caller must not tell the visitor.
    """
    memberships = list(
        Membership.objects.select_related("program", "customer")
        .filter(customer__email__iexact=email.strip())
        .order_by("pk")[:10]
    )
    if not memberships:
        return 0
    days = settings.LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS
    lines = [f"{membership.program.name}: {link_for(membership)}" for membership in memberships]
    body = (
        "Here is your link to your points and rewards:\n\n"
        + "\n".join(lines)
        + f"\n\nThe link works for {days} days. If you did not ask for it, you can ignore this e-mail.\n"
    )
    send_mail("Your loyalty link", body, settings.DEFAULT_FROM_EMAIL, [memberships[0].customer.email])
    return len(memberships)


@transaction.atomic
def referral_name_set(*, membership: Membership, show: bool) -> Membership:
    """The member's choice: their first name on their referral page, or nothing about them."""
    Membership.objects.filter(pk=membership.pk).update(referral_shows_name=show)
    membership.referral_shows_name = show
    return membership
