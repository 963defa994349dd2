"""Signed links to the customer cockpit: /me/<token>/ (Django `signing`, salted, no database lookup needed)."""

from django.core import signing
from django.urls import reverse

from .models import Membership

SALT = "loyalty.cockpit"


def cockpit_token(membership: Membership) -> str:
    return signing.dumps({"m": membership.pk, "c": membership.referral_code}, salt=SALT, compress=True)


def cockpit_path(membership: Membership) -> str:
    return reverse("loyalty-cockpit", kwargs={"token": cockpit_token(membership)})


def cockpit_membership(token: str) -> Membership | None:
    """The membership a token names, or None if it was tampered with (or the referral code was rotated)."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    return (
        Membership.objects.select_related("program", "tier", "customer", "balance")
        .filter(pk=claims.get("m"), referral_code=claims.get("c"))
        .first()
    )
