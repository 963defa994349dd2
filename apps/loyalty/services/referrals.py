"""Referrals: a referee registers with a member's code; both get a bonus (now or on the first purchase)."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.customers.models import Customer
from apps.customers.outbox import domain_event_emit
from apps.platform.kill_switch import kill_switch_is_on
from loyalty_site.lib.errors import ConflictError, DomainError
from loyalty_site.lib.identity import email_normalize, phones_match

from .. import signals
from ..choices import LotStatus, ReferralStatus, ReturnPolicy, SourceType
from ..models import Membership, PointLot, Referral
from .ledger import MemberLedger, balances_lock, lot_create, lot_take_back, member_join


def referral_self_reason(*, referrer: Customer, referee: Customer) -> str:
    """Why a referral is the referrer referring themself ("" when it is not): same customer, e-mail or phone."""
    if referrer.pk == referee.pk:
        return "same customer"
    if referrer.email and referee.email and email_normalize(referrer.email) == email_normalize(referee.email):
        return "same e-mail address (after normalisation)"
    if referrer.phone and referee.phone and phones_match(referrer.phone, referee.phone):
        return "same phone number"
    return ""


@transaction.atomic
def referral_register(
    *,
    referee: Customer,
    code: str,
    at: datetime | None = None,
    cause: str = "",
    ip: str | None = None,
    device: str = "",
) -> Referral:
    """
    Record that `referee` registered with `code` (from `ip` / `device` when known); refuses self-referral
    (same customer, e-mail after Gmail-style normalisation, or phone), blocked customers and a second referral.
    """
    at = at or timezone.now()
    referrer = (
        Membership.objects.select_related("program", "customer").filter(referral_code=code.strip().upper()[:16]).first()
    )
    if referrer is None:
        raise DomainError("Unknown referral code.", path="code", code="unknown_referral_code")
    if referrer.customer.is_blocked or referee.is_blocked:
        raise DomainError("This referral is not allowed.", path="code", code="customer_blocked")
    if referral_self_reason(referrer=referrer.customer, referee=referee):
        raise DomainError("You cannot refer yourself.", path="code", code="self_referral")
    if Referral.objects.filter(referee=referee).exists():
        raise ConflictError("This customer was already referred.", path="referee", code="already_referred")
    membership, _ = member_join(customer=referee, program=referrer.program, referred_by=referrer, at=at, cause=cause)
    if membership.referred_by_id is None:
        Membership.objects.filter(pk=membership.pk).update(referred_by=referrer)
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                referrer=referrer, referee=referee, created_at=at, ip=ip or None, device=(device or "")[:64]
            )
    except IntegrityError:  # a concurrent registration of the same referee won
        raise ConflictError("This customer was already referred.", path="referee", code="already_referred") from None
    domain_event_emit(
        signal=signals.referral_registered,
        name="referral.registered",
        customer=referrer.customer,
        payload={
            "referral_id": referral.pk,
            "referrer_customer_id": referrer.customer_id,
            "referee_customer_id": referee.pk,
        },
        cause=cause,
        sender=Referral,
        referral=referral,
        membership=membership,
    )
    if not referrer.program.referral_requires_purchase:
        referral_reward(referral=referral, at=at, cause=cause)
        referral.refresh_from_db()
    return referral


@transaction.atomic
def referral_reward(*, referral: Referral, at: datetime | None = None, cause: str = "") -> Referral:
    """
    Give the referrer and referee their bonuses once (lots keyed by the referral), within the referrer's cap.
    While the global kill switch is on nothing is given and the referral stays registered (the next qualifying
    order after the switch goes off rewards it).
    """
    at = at or timezone.now()
    if kill_switch_is_on():
        return referral
    referrer = Membership.objects.select_related("program", "tier", "customer").get(pk=referral.referrer_id)
    referee = Membership.objects.select_related("program", "tier", "customer").get(
        program=referrer.program, customer_id=referral.referee_id
    )
    balances = balances_lock(sorted([referrer.pk, referee.pk]))  # both rows, in pk order
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    if referral.status != ReferralStatus.REGISTERED:
        return referral
    program = referrer.program
    rewarded = Referral.objects.filter(referrer=referrer, status=ReferralStatus.REWARDED).count()
    if program.referral_cap is not None and rewarded >= program.referral_cap:
        Referral.objects.filter(pk=referral.pk).update(status=ReferralStatus.CAPPED)
        referral.status = ReferralStatus.CAPPED
        return referral
    for membership, points, role in (
        (referrer, program.referrer_bonus, "referrer"),
        (referee, program.referee_bonus, "referee"),
    ):
        source_key = f"referral:{referral.pk}:{role}"
        if points <= 0 or PointLot.objects.filter(source_key=source_key).exists():
            continue
        if membership.customer.is_blocked:
            continue  # a blocked customer earns nothing
        ledger = MemberLedger(balance=balances[membership.pk], at=at, cause=cause or f"referral:{referral.pk}")
        lot_create(
            ledger,
            membership=membership,
            amount=points,
            source_type=SourceType.REFERRAL,
            source_key=source_key,
            reason="Referral bonus" if role == "referrer" else "Welcome bonus (referred by a friend)",
            pending_days=0,
        )
        ledger.flush()
    Referral.objects.filter(pk=referral.pk).update(
        status=ReferralStatus.REWARDED,
        referrer_bonus=program.referrer_bonus,
        referee_bonus=program.referee_bonus,
        rewarded_at=at,
    )
    referral.refresh_from_db()
    return referral


def referral_qualify(*, customer: Customer, at: datetime | None = None, cause: str = "") -> Referral | None:
    """Called after an order is earned: a referral waiting for the first purchase is rewarded now."""
    referral = Referral.objects.filter(referee=customer, status=ReferralStatus.REGISTERED).first()
    if referral is None:
        return None
    return referral_reward(referral=referral, at=at, cause=cause)


@transaction.atomic
def referral_refuse(*, referral: Referral, reason: str, at: datetime | None = None, cause: str = "") -> Referral:
    """
    Refuse a referral after the fact (a fraud rule): no bonus will be paid, and bonuses already paid are taken
    back exactly (pending points cancelled, active ones from the balance, never below zero). Idempotent.
    """
    at = at or timezone.now()
    program_id = Membership.objects.values_list("program_id", flat=True).get(pk=referral.referrer_id)
    referee = Membership.objects.filter(customer_id=referral.referee_id, program_id=program_id)
    member_ids = sorted({referral.referrer_id, *referee.values_list("pk", flat=True)})
    balances = balances_lock(member_ids)
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    if referral.status == ReferralStatus.REFUSED:
        return referral
    lots = list(
        PointLot.objects.filter(source_key__startswith=f"referral:{referral.pk}:").order_by("pk").select_for_update()
    )
    for lot in lots:
        points = lot.amount - lot.reversed_amount
        if points <= 0 or lot.status in (LotStatus.CANCELLED, LotStatus.EXPIRED):
            continue
        ledger = MemberLedger(balance=balances[lot.membership_id], at=at, cause=cause or f"referral:{referral.pk}")
        lot_take_back(ledger, lot, points, policy=ReturnPolicy.FROM_BALANCE, reason=f"Referral refused: {reason}")
        ledger.flush()
    Referral.objects.filter(pk=referral.pk).update(status=ReferralStatus.REFUSED, refused_reason=reason[:255])
    referral.refresh_from_db()
    return referral
