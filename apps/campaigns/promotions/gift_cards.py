"""
Gift cards: codes of a gift-cards campaign with a balance in one currency, kept as a ledger (GiftCardEntry:
issue, top-up, spend, refund, expire). Checkout spends them through the promotions API like any code (the
`gift_card_credit` effect: the balance pays what the discounts leave, after them); this module holds what
happens to a card outside a checkout, plus the spend / give-back steps the checkout transaction calls.

Lock order: a card row is locked (`select_for_update`, ascending primary key) after the budget counters and
before the code rows (see services' module docstring); a spend is a conditional UPDATE `balance >= amount`
under that lock, and a check constraint keeps `balance >= 0`: a card is never overdrawn.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.platform.audit import audit_record, audit_snapshot
from loyalty_site.lib.errors import ConflictError, DomainError
from loyalty_site.lib.money import CurrencyError, currency_code, decimals_error, minor_units, quantum, shop_currency

from .choices import CampaignType, EffectKind, GiftCardEntryKind
from .eligibility import code_normalize
from .models import Campaign, Code, GiftCard, GiftCardEntry, Incentive, Redemption

GIFT_CARD_PATTERN = "GC-****-****-****"
MAX_GIFT_CARD_AMOUNT = Decimal("100000")
EXPIRE_BATCH = 1000


def _actor_label(user: Any, actor: str) -> str:
    if actor:
        return actor[:120]
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return ""


def gift_card_amount_check(amount: Any, currency: str, *, path: str = "amount") -> Decimal:
    if not isinstance(amount, Decimal):
        try:
            amount = Decimal(str(amount))
        except ArithmeticError:
            raise ValidationError({path: "An amount is a number."}) from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationError({path: "An amount is more than zero."})
    if amount > MAX_GIFT_CARD_AMOUNT:
        raise ValidationError({path: f"At most {MAX_GIFT_CARD_AMOUNT:,} per operation."})
    problem = decimals_error(amount, currency)
    if problem:
        raise ValidationError({path: problem})
    return amount


def _credit_incentive(campaign: Campaign, user: Any) -> Incentive:
    """The campaign's one `gift_card_credit` incentive (created with the first card; redemptions refer to it)."""
    from .services import incentive_create

    incentive = campaign.incentives.filter(kind=EffectKind.GIFT_CARD_CREDIT).order_by("pk").first()
    return incentive or incentive_create(campaign=campaign, kind=EffectKind.GIFT_CARD_CREDIT, user=user)


def gift_card_issue_check(
    *,
    campaign: Campaign,
    amount: Any,
    currency: str | None = None,
    code: str = "",
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[str, Decimal, str]:
    """The issue's input made sound — (currency, amount, code text or "") — or a ValidationError by field."""
    now = now or timezone.now()
    if campaign.type != CampaignType.GIFT_CARDS:
        raise ValidationError({"campaign": "Gift cards are issued from a campaign of the type “gift cards”."})
    try:
        currency = currency_code(currency or shop_currency())
    except CurrencyError as error:
        raise ValidationError({"currency": error.message}) from None
    if minor_units(currency) > 2:
        raise ValidationError({"currency": f"{currency} has more than two decimals: not supported for gift cards."})
    amount = gift_card_amount_check(amount, currency)
    if expires_at is not None and expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    text = code_normalize(code) if code else ""
    if code and not 4 <= len(text) <= 64:
        raise ValidationError({"code": "A gift card code has 4 to 64 characters."})
    if text and Code.objects.filter(code=text).exists():
        raise ValidationError({"code": f"The code {text} exists already."})
    return currency, amount, text


@transaction.atomic
def gift_card_issue(
    *,
    campaign: Campaign,
    amount: Decimal,
    currency: str | None = None,
    code: str = "",
    customer: Any = None,
    expires_at: datetime | None = None,
    user: Any = None,
    actor: str = "",
    ref: str | None = None,
    now: datetime | None = None,
) -> GiftCard:
    """
    Issue a card of a gift-cards campaign: its code (given, or generated `GC-****-****-****`), its currency (the
    shop's by default), the amount as the first ledger entry, an optional holder and expiry. The same `ref`
    returns the card issued before (a retried issue is a no-op). Audited.
    """
    from .services import _pattern_codes

    now = now or timezone.now()
    if ref:
        earlier = GiftCardEntry.objects.filter(ref=ref, kind=GiftCardEntryKind.ISSUE).select_related("card").first()
        if earlier is not None:
            return earlier.card
    currency, amount, text = gift_card_issue_check(
        campaign=campaign, amount=amount, currency=currency, code=code, expires_at=expires_at, now=now
    )
    while not text:
        drawn = next(iter(_pattern_codes(GIFT_CARD_PATTERN, 1)))
        if not Code.objects.filter(code=drawn).exists():
            text = drawn
    _credit_incentive(campaign, user)
    code_row = Code.objects.create(
        campaign=campaign,
        code=text,
        max_uses=None,
        expires_at=expires_at,
        customer=customer,
        published_at=now if customer is not None else None,
        publication_ref=(ref or "")[:120],
    )
    card = GiftCard.objects.create(code=code_row, currency=currency, initial=amount, balance=amount, created_at=now)
    GiftCardEntry.objects.create(
        card=card,
        kind=GiftCardEntryKind.ISSUE,
        amount=amount,
        balance_after=amount,
        actor=_actor_label(user, actor),
        ref=ref or None,
        created_at=now,
    )
    audit_record(action="created", obj=card, user=user)
    return card


def gift_card_top_up_check(*, card: GiftCard, amount: Any, now: datetime | None = None) -> Decimal:
    """The top-up amount made sound for this card, or a refusal (expired or disabled card, bad amount)."""
    now = now or timezone.now()
    if card.code.expires_at is not None and card.code.expires_at <= now:
        raise ConflictError("This gift card has expired: it cannot be topped up.", path="card", code="code_expired")
    if not card.code.is_active:
        raise ConflictError("This gift card is disabled.", path="card", code="code_disabled")
    return gift_card_amount_check(amount, card.currency)


@transaction.atomic
def gift_card_top_up(
    *,
    card: GiftCard,
    amount: Decimal,
    user: Any = None,
    actor: str = "",
    reason: str = "",
    ref: str | None = None,
    now: datetime | None = None,
) -> GiftCardEntry:
    """Add to a card's balance (its own currency); refused on an expired or disabled card. Same `ref`: no-op."""
    now = now or timezone.now()
    if ref:
        earlier = GiftCardEntry.objects.filter(ref=ref).first()
        if earlier is not None:
            return earlier
    card = GiftCard.objects.select_for_update().select_related("code").get(pk=card.pk)
    amount = gift_card_top_up_check(card=card, amount=amount, now=now)
    before = audit_snapshot(card, fields=["balance"])
    GiftCard.objects.filter(pk=card.pk).update(balance=F("balance") + amount)
    card.balance += amount
    entry = GiftCardEntry.objects.create(
        card=card,
        kind=GiftCardEntryKind.TOP_UP,
        amount=amount,
        balance_after=card.balance,
        reason=reason[:255],
        actor=_actor_label(user, actor),
        ref=ref or None,
        created_at=now,
    )
    audit_record(action="updated", obj=card, before=before, user=user)
    return entry


def gift_cards_expire(*, now: datetime | None = None) -> int:
    """
    Periodic: the balance of every card past its expiry goes to zero with an `expire` entry. Set-based: per
    batch of 1,000 cards one locking SELECT (SKIP LOCKED: a card being spent is taken on the next run), one
    INSERT of the entries and one UPDATE of the balances; a second run finds nothing.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            due = list(
                GiftCard.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(balance__gt=0, code__expires_at__lte=now)
                .order_by("pk")
                .values_list("pk", "balance")[:EXPIRE_BATCH]
            )
            if not due:
                return total
            GiftCardEntry.objects.bulk_create(
                [
                    GiftCardEntry(
                        card_id=pk,
                        kind=GiftCardEntryKind.EXPIRE,
                        amount=-balance,
                        balance_after=Decimal("0"),
                        actor="expiry",
                        created_at=now,
                    )
                    for pk, balance in due
                ]
            )
            GiftCard.objects.filter(pk__in=[pk for pk, _ in due]).update(balance=Decimal("0"))
            total += len(due)


# --- Inside a checkout transaction (services._checkout / _give_back / redemption_rollback) ------------------


def gift_cards_lock(candidates: list[Any]) -> None:
    """Lock the cards of the candidates (ascending pk) and put the locked rows, with fresh balances, on them."""
    codes = {candidate.code.pk: candidate.code for candidate in candidates if candidate.gift_card is not None}
    if not codes:
        return
    for card in GiftCard.objects.select_for_update().filter(code_id__in=codes).order_by("pk"):
        codes[card.code_id].gift_card = card


def gift_cards_spend(outcome: Any, redemption: Redemption) -> None:
    """Take what each applied card pays from its balance (a conditional UPDATE; the card is locked)."""
    currency = outcome.cart.currency
    spends = sorted(
        (
            (applied.candidate.gift_card, applied.discount)
            for applied in outcome.applied
            if applied.candidate.is_gift_card and applied.discount
        ),
        key=lambda spend: spend[0].pk,
    )
    for card, minor in spends:
        amount = (Decimal(minor) * quantum(currency)).quantize(quantum(currency))
        taken = GiftCard.objects.filter(pk=card.pk, balance__gte=amount).update(balance=F("balance") - amount)
        if taken != 1:  # cannot happen under the lock; never overdraw if it ever does
            raise DomainError("The gift card's balance changed meanwhile.", path="codes", code="gift_card_empty")
        card.balance -= amount
        GiftCardEntry.objects.create(
            card=card,
            kind=GiftCardEntryKind.SPEND,
            amount=-amount,
            balance_after=card.balance,
            redemption=redemption,
            actor=f"redemption:{redemption.pk}",
        )


def gift_cards_give_back(redemption: Redemption, *, share: Decimal | None = None, reason: str = "") -> None:
    """
    Give back to each card what the redemption still holds of it (all of it, or `share` of what it spent,
    rounded half to even to the cent, never more than is left). Cards locked in ascending pk.
    """
    rows = redemption.gift_card_entries.values("card_id").annotate(net=Sum("amount")).order_by("card_id")
    nets = {row["card_id"]: -row["net"] for row in rows if row["net"] < 0}
    if not nets:
        return
    spent: dict[int, Decimal] = {}
    if share is not None:
        for card_id, amount in redemption.gift_card_entries.filter(kind=GiftCardEntryKind.SPEND).values_list(
            "card_id", "amount"
        ):
            spent[card_id] = spent.get(card_id, Decimal("0")) - amount
    for card in GiftCard.objects.select_for_update().filter(pk__in=nets).order_by("pk"):
        back = nets[card.pk]
        if share is not None:
            back = min((spent[card.pk] * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), back)
        if back <= 0:
            continue
        GiftCard.objects.filter(pk=card.pk).update(balance=F("balance") + back)
        GiftCardEntry.objects.create(
            card=card,
            kind=GiftCardEntryKind.REFUND,
            amount=back,
            balance_after=card.balance + back,
            redemption=redemption,
            reason=reason[:255],
            actor=f"redemption:{redemption.pk}",
        )
