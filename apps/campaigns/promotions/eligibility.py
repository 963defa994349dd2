"""
Which incentives a cart gets, and why not: the read-only evaluation behind validate, qualify, the cart
simulator, reserve and redeem (which re-run it inside their transaction, on locked budget counters).

For each candidate (each code sent, and each active automatic campaign) the checks run in a fixed order —
the global kill switch (`apps.platform.kill_switch`), status, schedule, code, validation rule, budgets — and
the first that fails is the refusal
(machine `reason`, `path` of what failed, a sentence). Candidates that pass are applied in the stacking
order (priority high first, then category, then campaign id, then code), honouring exclusive / joint /
stackable, the global maximum per order and per category, and the percentage base; in `reject_all` mode
one failing code voids everything. The same cart always gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.platform.kill_switch import REFUSAL_CODE, REFUSAL_MESSAGE
from apps.platform.limits import period_bucket
from loyalty_site.lib.conditions import EvaluationContext, condition_evaluate, field_get
from loyalty_site.lib.conditions.evaluation import read_field
from loyalty_site.lib.conditions.operators import OPERATORS
from loyalty_site.lib.money import minor_units, money_format, quantum, shop_currency
from loyalty_site.lib.split import campaign_holdout_salt, held_out

from .choices import (
    CampaignStatus,
    CampaignType,
    EffectKind,
    FailureMode,
    LimitAction,
    LimitMeasure,
    LimitPeriod,
    LimitScope,
    PercentBase,
    Stacking,
)
from .models import Campaign, Code, GiftCard, Incentive, Limit, LimitCounter, PromotionSettings
from .pricing import Effect, IncentiveTerms, LineState, effect_apply, effect_cap, effect_compute
from .promotion_set import (
    PromotionSet,
    array_literal,
    campaigns_prepare,
    hot_cursor,
    promotion_set,
    promotion_set_and_codes,
)

# --- Input -------------------------------------------------------------------------------------------


@dataclass
class CartLine:
    """One line of the cart being validated (amounts in the shop currency)."""

    index: int
    quantity: int
    unit_price: Decimal
    title: str = ""
    product_id: int | None = None
    sku: str = ""

    def as_condition_line(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "title": self.title,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "sku": self.sku,
        }


@dataclass
class Cart:
    """The cart as the condition language sees it (`cart.total`, `cart.lines`, `cart.shipping`…)."""

    currency: str
    lines: list[CartLine]
    shipping: Decimal = Decimal("0")
    channel: str = ""

    @property
    def subtotal(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))

    @property
    def total(self) -> Decimal:  # `cart.total`: the goods before any discount
        return self.subtotal

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)

    def condition_view(self) -> Any:
        return _CartView(self)


class _CartView:
    """What `cart.*` fields read: lines as dicts (like stored carts), totals as Decimals."""

    def __init__(self, cart: Cart) -> None:
        self.cart = cart
        self.lines = [line.as_condition_line() for line in cart.lines]
        subtotal = cart.subtotal  # (summed once)
        self.total = subtotal
        self.total_shop = subtotal  # carts are validated in the shop currency
        self.subtotal = subtotal
        self.shipping = cart.shipping
        self.currency = cart.currency
        self.channel = cart.channel
        self.quantity = cart.quantity


# --- Output ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a candidate does not apply: machine reason, the path of what failed, a sentence."""

    reason: str
    message: str
    path: str = ""


# The verdicts of the validation rules in one evaluation, by (`CampaignChecks.rule_key`, explained).
Verdicts = dict[tuple[str | None, bool], Refusal | None]


@dataclass
class Candidate:
    campaign: Campaign | None
    code: Code | None = None
    code_text: str = ""
    refusal: Refusal | None = None
    index: int = 0  # position of the code in the request (automatic promotions: after the codes)

    @property
    def gift_card(self) -> GiftCard | None:
        """The gift card behind the code (a code of a gift-cards campaign), loaded with it."""
        code = self.code
        if code is None or code.pk is None or self.campaign is None or self.campaign.type != CampaignType.GIFT_CARDS:
            return None
        return getattr(code, "gift_card", None)

    @property
    def is_gift_card(self) -> bool:
        return self.campaign is not None and self.campaign.type == CampaignType.GIFT_CARDS

    @property
    def order_key(self) -> tuple:
        campaign = self.campaign
        assert campaign is not None
        # Gift cards pay what the discounts leave: always after every discount, in the order the codes came.
        if self.is_gift_card:
            return (1, 0, "", 0, f"{self.index:04d}")
        return (0, -campaign.priority, campaign.category, campaign.id, self.code_text)


@dataclass
class AppliedIncentive:
    incentive: Incentive
    effect: Effect


@dataclass
class Applied:
    candidate: Candidate
    incentives: list[AppliedIncentive]

    @property
    def discount(self) -> int:
        """What it takes off the order (for a gift card: what the card pays)."""
        return sum(item.effect.total for item in self.incentives)


@dataclass
class BudgetUse:
    """How much a redemption takes from one limit's counter."""

    limit: Limit
    bucket: date
    subject: str
    amount: Decimal
    marker: bool = False  # a distinct-customers limit's "this customer is counted" row (no threshold, no pause)


@dataclass
class Outcome:
    """The answer for one cart: applied incentives in order, skipped candidates with reasons, per-line totals."""

    cart: Cart
    customer: Any
    now: datetime
    applied: list[Applied] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)
    lines: list[LineState] = field(default_factory=list)
    shipping: int = 0
    shipping_left: int = 0
    budget_uses: list[BudgetUse] = field(default_factory=list)

    @property
    def discount_total(self) -> int:
        """The discounts (gift cards are payments, not discounts: see `credit_total`)."""
        return sum(applied.discount for applied in self.applied if not applied.candidate.is_gift_card)

    @property
    def credit_total(self) -> int:
        """What gift cards pay, after the discounts."""
        return sum(applied.discount for applied in self.applied if applied.candidate.is_gift_card)

    @property
    def code_failed(self) -> bool:
        return any(candidate.code_text for candidate in self.skipped)


# --- Helpers ---------------------------------------------------------------------------------------------


def to_minor(amount: Decimal, currency: str) -> int:
    return int((amount / quantum(currency)).to_integral_value())


def from_minor(amount: int, currency: str) -> Decimal:
    return (Decimal(amount) * quantum(currency)).quantize(quantum(currency))


def code_normalize(text: str) -> str:
    return " ".join(str(text).split()).upper()


def limit_subject(limit: Limit, *, code: Code | None, customer: Any) -> str | None:
    """The counter subject of a limit for this use; None when it cannot be counted (no customer/code)."""
    if limit.scope == LimitScope.CODE:
        return f"code:{code.pk}" if code is not None else None
    if limit.scope == LimitScope.CUSTOMER:
        return f"customer:{customer.pk}" if customer is not None and customer.pk else None
    return ""


def _display(value: Any, spec_type: str, currency: str) -> str:
    if value is None:
        return "not set"
    if spec_type == "money":
        return _money_text(str(value), currency)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "empty"
    return str(value)


@lru_cache(maxsize=4096)
def _money_text(amount: str, currency: str) -> str:
    """
    `money_format` of an amount given as text, kept: a refused rule's sentence names the cart's figure and the
    rule's threshold (`order total $42.00 … at least $50.00`), the same few amounts for every campaign whose rule
    a cart misses, and babel's formatting cost more than the whole rest of the refusal.
    """
    return money_format(Decimal(amount), currency)


def rule_explain(condition: dict, context: EvaluationContext, *, path: str, currency: str) -> Refusal:
    """The first failing part of a condition that evaluated false, as a refusal with its path."""
    node, node_path = condition, path
    while True:
        if "all" in node:
            for index, child in enumerate(node["all"]):
                child_path = f"{node_path}.all[{index}]"
                if not condition_evaluate(child, context, path=child_path).result:
                    node, node_path = child, child_path
                    break
            else:  # pragma: no cover - an `all` that is false has a false child
                break
            continue
        if "any" in node:
            return Refusal("rule_failed", "none of the alternatives of the rule holds", f"{node_path}.any")
        if "not" in node:
            return Refusal("rule_failed", "the cart matches a condition the rule excludes", f"{node_path}.not")
        break
    spec = field_get(node["field"])
    operator = OPERATORS[node["op"]]
    if spec.type == "list":
        sentence = f"{spec.label}: no item matches the rule" if node["op"] == "any" else f"{spec.label} do not match"
        return Refusal("rule_failed", sentence, node_path)
    actual = read_field(spec, context, node.get("window"))
    wanted = node.get("value")
    wanted_text = "" if wanted is None else " " + _display(wanted, spec.type, currency)
    needs = operator.label.replace("is ", "be ", 1)
    message = f"{spec.label} is {_display(actual, spec.type, currency)}; the rule needs it to {needs}{wanted_text}"
    return Refusal("rule_failed", message, node_path)


def promotion_settings() -> PromotionSettings:
    return PromotionSettings.objects.order_by("pk").first() or PromotionSettings()


# --- The evaluation ------------------------------------------------------------------------------------


def _schedule_refusal(campaign: Campaign, now: datetime) -> Refusal | None:
    if campaign.status == CampaignStatus.PAUSED:
        return Refusal("campaign_paused", f"the campaign “{campaign.name}” is paused", "campaign.status")
    if campaign.status == CampaignStatus.DRAFT:
        return Refusal("campaign_not_active", f"the campaign “{campaign.name}” is a draft", "campaign.status")
    if campaign.status == CampaignStatus.ENDED or (campaign.ends_at and campaign.ends_at <= now):
        return Refusal("campaign_ended", f"the campaign “{campaign.name}” has ended", "campaign.ends_at")
    if campaign.starts_at and campaign.starts_at > now:
        return Refusal("campaign_not_started", f"the campaign “{campaign.name}” starts later", "campaign.starts_at")
    if not campaign.weekdays and not (campaign.hours_from and campaign.hours_until):
        return None
    local = timezone.localtime(now)
    if campaign.weekdays and local.isoweekday() not in campaign.weekdays:
        return Refusal("outside_schedule", f"the campaign is not valid on {local:%A}s", "campaign.weekdays")
    if campaign.hours_from and campaign.hours_until:
        moment = local.time()
        inside = (
            campaign.hours_from <= moment < campaign.hours_until
            if campaign.hours_from < campaign.hours_until
            else moment >= campaign.hours_from or moment < campaign.hours_until
        )
        if not inside:
            return Refusal(
                "outside_schedule",
                f"the campaign is valid from {campaign.hours_from:%H:%M} to {campaign.hours_until:%H:%M}",
                "campaign.hours_from",
            )
    return None


def _code_refusal(code: Code, customer: Any, now: datetime) -> Refusal | None:
    if not code.is_active:
        return Refusal("code_disabled", f"the code {code.code} is disabled", "code.is_active")
    expires = code.expires_at
    if expires is None and code.expires_days_after_publication and code.published_at:
        expires = code.published_at + timedelta(days=code.expires_days_after_publication)
    if expires is not None and expires <= now:
        return Refusal(
            "code_expired", f"the code {code.code} expired on {timezone.localtime(expires):%Y-%m-%d}", "code.expires_at"
        )
    if code.customer_id is not None and (customer is None or customer.pk != code.customer_id):
        return Refusal("code_not_yours", f"the code {code.code} belongs to another customer", "code.customer")
    if code.max_uses is not None and code.uses >= code.max_uses:
        return Refusal("code_used", f"the code {code.code} has already been used", "code.uses")
    return None


def code_texts(codes: list[str]) -> list[str]:
    """The codes sent, normalised, in order, each once."""
    texts: list[str] = []
    for text in codes:
        normal = code_normalize(text)
        if normal not in texts:
            texts.append(normal)
    return texts


def candidates_load(
    *,
    codes: list[str],
    include_automatic: bool,
    customer: Any,
    promotions: PromotionSet | None = None,
    code_rows: list[Code] | None = None,
) -> list[Candidate]:
    """
    The candidates of a request: each code sent (in order, duplicates once) and the automatic campaigns. With
    `promotions` (the process's current set, see `promotion_set`) the campaigns come from it and only the codes
    are read (or taken from `code_rows`, read with the set's stamp); without it everything is read now (reserve
    and redeem, inside their transaction).
    """
    texts = code_texts(codes)
    if promotions is not None:
        found = {code.code: code for code in _codes_read(texts, promotions, rows=code_rows)}
    else:
        rows = Code.objects.select_related("campaign", "gift_card").filter(code__in=texts) if texts else []
        found = {code.code: code for code in rows}
    missing = [text for text in texts if text not in found]
    if missing:
        rewards = reward_codes(missing, save=False)
        if promotions is not None:
            shared = promotions.campaigns_get(code.campaign_id for code in rewards)
            for code in rewards:
                code.campaign = shared[code.campaign_id]
        found.update({code.code: code for code in rewards})
    candidates: list[Candidate] = []
    for index, text in enumerate(texts):
        sent = found.get(text)
        if sent is None:
            candidates.append(
                Candidate(
                    None,
                    code_text=text,
                    index=index,
                    refusal=Refusal("code_unknown", f"no code {text}", f"codes[{index}]"),
                )
            )
        else:
            candidates.append(Candidate(sent.campaign, code=sent, code_text=text, index=index))
    if include_automatic:
        automatic = (
            promotions.automatic
            if promotions is not None
            else Campaign.objects.filter(type=CampaignType.AUTOMATIC, status=CampaignStatus.ACTIVE).order_by("pk")
        )
        candidates.extend(Candidate(campaign, index=len(texts) + offset) for offset, campaign in enumerate(automatic))
    if promotions is None:
        by_pk: dict[int, Campaign] = {}
        for candidate in candidates:
            if candidate.campaign is not None:
                by_pk.setdefault(candidate.campaign.pk, candidate.campaign)
        campaigns_prepare(by_pk.values())
        for candidate in candidates:  # (a campaign reached twice, by two codes, shares what was attached)
            if candidate.campaign is not None and candidate.campaign is not by_pk[candidate.campaign.pk]:
                prepared = by_pk[candidate.campaign.pk]
                candidate.campaign._promo_incentives = prepared._promo_incentives
                candidate.campaign._promo_limits = prepared._promo_limits
                candidate.campaign._promo_rule = prepared._promo_rule
                candidate.campaign._promo_checks = prepared._promo_checks
    return candidates


def _codes_read(texts: list[str], promotions: PromotionSet, *, rows: list[Code] | None = None) -> list[Code]:
    """
    The codes among `texts` (or `rows`, already read) with their campaign from the promotion set and, for a
    gift-cards campaign's code, its gift card (read only then). Raw SQL through `objects.raw` (the fields'
    converters still apply): building the ORM statement cost more than running it, on every validation.
    """
    if not texts:
        return []
    if rows is None:
        table = connection.ops.quote_name(Code._meta.db_table)
        marks = ", ".join(["%s"] * len(texts))
        rows = list(Code.objects.raw(f"SELECT * FROM {table} WHERE code IN ({marks})", texts))  # noqa: S608
    shared = promotions.campaigns_get(code.campaign_id for code in rows)
    for code in rows:
        code.campaign = shared[code.campaign_id]
    cards = [code for code in rows if code.campaign.type == CampaignType.GIFT_CARDS]
    if cards:
        by_code = {card.code_id: card for card in GiftCard.objects.filter(code__in=cards)}
        for code in cards:
            Code.gift_card.related.set_cached_value(code, by_code.get(code.pk))
    return rows


def reward_codes(texts: list[str], *, save: bool) -> list[Code]:
    """
    Loyalty reward codes among `texts` whose reward is tied to a campaign (`Campaign.reward`), as codes of that
    campaign: single-use, the member's, expiring with the reward code, used once the loyalty code is. Read-only
    answers (validate, qualify) get unsaved codes; reserve and redeem (`save=True`) store them — a reward code
    becomes a promotion code the first time a checkout takes it, and `redeem` marks the loyalty code used.
    """
    if not texts:
        return []  # (no code sent: not even the queryset to build)
    from apps.loyalty.choices import RedemptionStatus as RewardStatus
    from apps.loyalty.models import Redemption as RewardRedemption

    rows = RewardRedemption.objects.select_related("reward__promotion_campaign", "membership").filter(
        code__in=texts[:MAX_REWARD_CODES], reward__promotion_campaign__isnull=False
    )
    codes = [
        Code(
            campaign=row.reward.promotion_campaign,
            code=row.code.upper(),
            max_uses=1,
            uses=0 if row.status == RewardStatus.ISSUED else 1,
            is_active=row.status in (RewardStatus.ISSUED, RewardStatus.USED),
            expires_at=row.expires_at,
            customer_id=row.membership.customer_id,
            published_at=row.issued_at,
            publication_ref=f"{REWARD_REF}{row.pk}",
        )
        for row in rows
    ]
    if save and codes:
        Code.objects.bulk_create(codes, ignore_conflicts=True)
        return list(Code.objects.select_related("campaign").filter(code__in=[code.code for code in codes]))
    return codes


REWARD_REF = "loyalty_redemption:"
MAX_REWARD_CODES = 20


def budget_key(limit: Limit, *, code: Code | None, customer: Any, now: datetime) -> tuple[int, date, str] | None:
    subject = limit_subject(limit, code=code, customer=customer)
    return None if subject is None else (limit.pk, period_bucket(limit.period, now), subject)


MARKER = "|customer:"


def marker_key(key: tuple[int, date, str], customer: Any) -> tuple[int, date, str] | None:
    """
    A distinct-customers limit counts each customer once per period: its counter (`key`) moves by 1 only when
    the customer's marker counter — same limit and bucket, subject `<subject>|customer:<id>`, limit 1 — is
    still 0. Both are locked and taken like any counter, so a rollback or an expired reservation frees the slot.
    """
    if customer is None or not customer.pk:
        return None
    return (key[0], key[1], f"{key[2]}{MARKER}{customer.pk}")


def budget_keys(limit: Limit, *, code: Code | None, customer: Any, now: datetime) -> list[tuple[int, date, str]]:
    """Every counter key a use of `limit` may move: its own, plus the customer's marker for distinct customers."""
    key = budget_key(limit, code=code, customer=customer, now=now)
    if key is None:
        return []
    if limit.measure == LimitMeasure.DISTINCT_CUSTOMERS:
        marker = marker_key(key, customer)
        return [key, marker] if marker is not None else [key]
    return [key]


def counters_read(candidates: list[Candidate], *, customer: Any, now: datetime) -> dict[tuple, Decimal]:
    """
    Used amount per (limit, bucket, subject) for every limit a candidate may take (one statement): what each
    counter holds, less what reservations past their TTL still hold in it — they no longer hold their budget,
    even before the sweep releases them.
    """
    keys: set[tuple[int, date, str]] = set()
    bucket_of: dict[str, date] = {}  # (each period's bucket worked out once: ~50 limits, one or two periods)
    for candidate in candidates:
        for limit in getattr(candidate.campaign, "_promo_limits", []):
            subject = limit_subject(limit, code=candidate.code, customer=customer)
            if subject is None:
                continue
            bucket = bucket_of.get(limit.period)
            if bucket is None:
                bucket = bucket_of[limit.period] = period_bucket(limit.period, now)
            key = (limit.id, bucket, subject)  # (`.id`, not the `pk` property: ~50 limits a validation)
            keys.add(key)
            if limit.measure == LimitMeasure.DISTINCT_CUSTOMERS:  # (as `budget_keys`: the customer's marker too)
                marker = marker_key(key, customer)
                if marker is not None:
                    keys.add(marker)
    if not keys:
        return {}
    from .choices import RedemptionStatus
    from .models import LimitTake, Redemption

    # Raw SQL: the ORM spent more building this statement than PostgreSQL spent running it, on every validation.
    # On PostgreSQL the ids, buckets and subjects go as three array literals (`array_literal`) and the rows are read
    # with a plain cursor (psycopg gives ints, dates and Decimals; Django applies no converter there): the statement's
    # text is the same for every cart, so psycopg keeps it parsed, and ~50 limits are 3 strings to adapt, not 100
    # values. Elsewhere `objects.raw`, whose converters apply.
    quote = connection.ops.quote_name
    counter, take, redemption = (quote(model._meta.db_table) for model in (LimitCounter, LimitTake, Redemption))
    limit_ids = sorted({key[0] for key in keys})
    buckets = sorted({key[1] for key in keys})
    subjects = sorted({key[2] for key in keys})
    select = (
        f"SELECT c.id, c.limit_id, c.bucket, c.subject, c.used - COALESCE(("  # noqa: S608 - table names, no input
        f"SELECT SUM(t.amount - t.returned) FROM {take} t INNER JOIN {redemption} r ON r.id = t.redemption_id "
        f"WHERE t.counter_id = c.id AND r.status = %s AND r.expires_at <= %s), 0) AS used FROM {counter} c "
    )
    reserved, moment = RedemptionStatus.RESERVED.value, connection.ops.adapt_datetimefield_value(now)
    if connection.vendor == "postgresql":
        with hot_cursor() as cursor:
            cursor.execute(
                f"{select}WHERE c.limit_id = ANY(%s::bigint[]) AND c.bucket = ANY(%s::date[]) "
                "AND c.subject = ANY(%s::text[])",
                [
                    reserved,
                    moment,
                    "{" + ",".join(map(str, limit_ids)) + "}",
                    array_literal(buckets),
                    array_literal(subjects),
                ],
            )
            return {(limit_id, bucket, subject): used for _, limit_id, bucket, subject, used in cursor.fetchall()}
    marks = lambda values: ", ".join(["%s"] * len(values))  # noqa: E731
    rows = LimitCounter.objects.raw(
        f"{select}WHERE c.limit_id IN ({marks(limit_ids)}) AND c.bucket IN ({marks(buckets)}) "
        f"AND c.subject IN ({marks(subjects)})",
        [
            reserved,
            moment,
            *limit_ids,
            *(connection.ops.adapt_datefield_value(bucket) for bucket in buckets),
            *subjects,
        ],
    )
    return {(row.limit_id, row.bucket, row.subject): row.used for row in rows}


def promotions_evaluate(
    *,
    cart: Cart,
    customer: Any,
    codes: list[str],
    now: datetime | None = None,
    include_automatic: bool = True,
    candidates: list[Candidate] | None = None,
    used: dict[tuple, Decimal] | None = None,
) -> Outcome:
    """
    What the cart gets: every candidate checked, the passing ones stacked and computed in minor units.
    `candidates` and `used` let redeem hand in what it loaded and locked; otherwise they are read here.
    """
    now = now or timezone.now()
    code_rows: list[Code] | None = None
    if candidates is None:  # (the stamp, the kill switch and the codes in one statement)
        promotions, switched_off, code_rows = promotion_set_and_codes(code_texts(codes))
    else:
        promotions, switched_off = promotion_set()
    settings = promotions.settings
    currency = cart.currency
    outcome = Outcome(cart=cart, customer=customer, now=now)
    outcome.lines = []
    for cart_line in cart.lines:
        initial = to_minor(cart_line.unit_price * cart_line.quantity, currency)
        outcome.lines.append(
            LineState(
                index=cart_line.index,
                quantity=cart_line.quantity,
                unit=to_minor(cart_line.unit_price, currency),
                initial=initial,
                remaining=initial,
            )
        )
    outcome.shipping = outcome.shipping_left = to_minor(cart.shipping, currency)
    if candidates is None:
        candidates = candidates_load(
            codes=codes,
            include_automatic=include_automatic,
            customer=customer,
            promotions=promotions,
            code_rows=code_rows,
        )
    if used is None:
        used = counters_read(candidates, customer=customer, now=now)
    used = dict(used)
    context = EvaluationContext(customer=customer, now=now, cart=cart.condition_view())
    assert context.cart is not None  # (just set)
    # One context per line, shared by every lines rule of this evaluation.
    line_contexts = [
        EvaluationContext(customer=customer, now=now, cart=context.cart, line=as_dict, cache=context.cache)
        for as_dict in context.cart.lines
    ]

    shop = shop_currency()
    verdicts: Verdicts = {}
    passing: list[Candidate] = []
    for candidate in candidates:
        if candidate.refusal is None:
            candidate.refusal = (
                Refusal(REFUSAL_CODE, REFUSAL_MESSAGE, "")
                if switched_off
                else _candidate_refusal(
                    candidate,
                    customer=customer,
                    now=now,
                    context=context,
                    currency=currency,
                    shop=shop,
                    verdicts=verdicts,
                )
            )
        (outcome.skipped if candidate.refusal else passing).append(candidate)

    applied_campaigns: list[Campaign] = []
    for candidate in sorted(passing, key=lambda item: item.order_key):
        campaign = candidate.campaign
        assert campaign is not None
        gift_card = candidate.is_gift_card
        # A gift card is a means of payment, not a discount: stacking rules do not apply to it.
        refusal = None if gift_card else _stacking_refusal(campaign, applied_campaigns, settings)
        applied = None
        if refusal is None:
            applied, refusal = _candidate_apply(
                candidate, outcome=outcome, settings=settings, context=context, line_contexts=line_contexts, used=used
            )
        if refusal is not None:
            candidate.refusal = refusal
            outcome.skipped.append(candidate)
            continue
        assert applied is not None
        outcome.applied.append(applied)
        if not gift_card:
            applied_campaigns.append(campaign)

    if settings.failure_mode == FailureMode.REJECT_ALL and outcome.code_failed and outcome.applied:
        failing = next(candidate.code_text for candidate in outcome.skipped if candidate.code_text)
        for applied in outcome.applied:
            applied.candidate.refusal = Refusal(
                "rejected_all", f"the code {failing} failed, so nothing applies", "codes"
            )
            outcome.skipped.append(applied.candidate)
        outcome.applied = []
        outcome.budget_uses = []
        for line in outcome.lines:
            line.remaining = line.initial
        outcome.shipping_left = outcome.shipping
    outcome.skipped.sort(key=lambda candidate: candidate.index)
    return outcome


def _candidate_refusal(
    candidate: Candidate,
    *,
    customer: Any,
    now: datetime,
    context: EvaluationContext,
    currency: str,
    shop: str,
    explain: bool = True,
    verdicts: Verdicts | None = None,
) -> Refusal | None:
    """
    The first check the candidate fails (kill switch aside), or None. `shop`: the shop currency (read once per
    evaluation). `explain=False`: a refused rule is not put into words (`RULE_REFUSED`), for a caller that only
    asks whether the candidate passes. `verdicts`: the rules' verdicts of this evaluation (see `_rule_refusal`).
    """
    campaign = candidate.campaign
    assert campaign is not None
    checks = campaign._promo_checks
    refusal = _schedule_refusal(campaign, now)
    # The campaign's holdout: a stable share of customers gets nothing from it, to measure its lift.
    if (
        refusal is None
        and campaign.holdout_percent
        and getattr(customer, "pk", None)
        and held_out(campaign_holdout_salt(campaign.pk), customer.pk, campaign.holdout_percent)
    ):
        refusal = Refusal(
            "held_out", f"this customer is in the holdout of “{campaign.name}” (kept out to measure it)", "customer"
        )
    if refusal is None and candidate.code is not None:
        refusal = _code_refusal(candidate.code, customer, now)
    if refusal is None and candidate.is_gift_card:
        refusal = _gift_card_refusal(candidate, currency)
    if refusal is None and currency != shop:
        refusal = _currency_refusal(campaign, currency, gift_card=candidate.is_gift_card)
    if refusal is None and not checks.active:
        refusal = Refusal("campaign_paused", f"every incentive of “{campaign.name}” is switched off", "incentives")
    condition = campaign.validation_rule
    if refusal is None and condition:
        refusal = _rule_refusal(
            campaign, condition, context=context, currency=currency, explain=explain, verdicts=verdicts
        )
    if refusal is None and checks.gives_points:
        refusal = points_receiver_refusal(customer)
    if refusal is None and checks.per_customer and (customer is None or not customer.pk):
        return Refusal("customer_required", "this incentive is limited per customer: send the customer", "customer")
    return refusal


def _rule_refusal(
    campaign: Campaign,
    condition: dict,
    *,
    context: EvaluationContext,
    currency: str,
    explain: bool,
    verdicts: Verdicts | None,
) -> Refusal | None:
    """
    The campaign's validation rule (`condition`) on the cart: None when it holds, else why not. Campaigns often
    share a rule ("at least 50.00 and 2 items"): with `verdicts` (one dict per evaluation, the same context for
    every candidate) a rule equal to one already evaluated (`CampaignChecks.rule_key`) gets that verdict, sentence
    included, without being evaluated again. A rule without a predicate (one the catalog no longer accepts) is
    evaluated every time, and raises as it always did.
    """
    rule = getattr(campaign, "_promo_rule", None)
    key = (campaign._promo_checks.rule_key, explain)
    if verdicts is not None and rule is not None and key in verdicts:
        return verdicts[key]
    holds = rule(context) if rule is not None else condition_evaluate(condition, context, path="validation_rule").result
    refusal = None
    if not holds:
        refusal = (
            rule_explain(condition, context, path="validation_rule", currency=currency) if explain else RULE_REFUSED
        )
    if verdicts is not None and rule is not None:
        verdicts[key] = refusal
    return refusal


RULE_REFUSED = Refusal("rule_failed", "the cart does not meet the validation rule", "validation_rule")


def candidates_may_apply(candidates: list[Candidate], *, cart: Cart, customer: Any, now: datetime) -> list[Candidate]:
    """
    The candidates that pass every check but the budgets and stacking (and the global kill switch): the ones whose
    budget counters a redemption locks before it evaluates the cart again under those locks. A refused rule is not
    put into words here. Read-only; the candidates are not changed.
    """
    context = EvaluationContext(customer=customer, now=now, cart=cart.condition_view())
    shop = shop_currency()
    verdicts: Verdicts = {}
    return [
        candidate
        for candidate in candidates
        if candidate.refusal is None
        and candidate.campaign is not None
        and _candidate_refusal(
            candidate,
            customer=customer,
            now=now,
            context=context,
            currency=cart.currency,
            shop=shop,
            explain=False,
            verdicts=verdicts,
        )
        is None
    ]


MONEY_MEASURES = (LimitMeasure.DISCOUNT_AMOUNT, LimitMeasure.ORDER_VALUE)


def _currency_refusal(campaign: Campaign, currency: str, *, gift_card: bool) -> Refusal | None:
    """
    Incentive amounts and money budgets are in the shop currency: a cart in another currency is refused rather than
    discounted by shop-currency amounts or counted into a shop-currency budget (a sum never mixes currencies). A gift
    card keeps its own currency (checked against the cart's); it is refused only when a money limit would count it.
    """
    shop = shop_currency()
    if currency == shop:
        return None
    if gift_card and not any(limit.measure in MONEY_MEASURES for limit in campaign._promo_limits):
        return None
    return Refusal(
        "currency_mismatch",
        f"“{campaign.name}” is computed in the shop currency {shop}; the cart is in {currency}",
        "cart.currency",
    )


def points_receiver_refusal(customer: Any) -> Refusal | None:
    """Bonus points go to a member of the loyalty program (or a customer it enrols on earning)."""
    if customer is None or not customer.pk:
        return Refusal("customer_required", "bonus points go to a customer: send the customer", "customer")
    from apps.loyalty.services import membership_for, program_default

    program = program_default()
    if program is None or (membership_for(customer, program) is None and not program.auto_enroll):
        return Refusal("not_a_member", "bonus points go to loyalty members: this customer is not one", "customer")
    return None


def _gift_card_refusal(candidate: Candidate, currency: str) -> Refusal | None:
    card = candidate.gift_card
    if card is None:
        return Refusal("gift_card_unknown", f"the code {candidate.code_text} is not a gift card", "code")
    if card.currency != currency:
        return Refusal(
            "gift_card_currency",
            f"the gift card {candidate.code_text} is in {card.currency}; the cart is in {currency}",
            "code.gift_card.currency",
        )
    if card.balance <= 0:
        return Refusal("gift_card_empty", f"the gift card {candidate.code_text} has no balance left", "code.gift_card")
    return None


def _stacking_refusal(campaign: Campaign, applied: list[Campaign], settings: PromotionSettings) -> Refusal | None:
    campaign_id = campaign.id  # (`.id` and a plain loop: the hot loop of a validation)
    for other in applied:
        if other.id == campaign_id:
            return Refusal("campaign_already_applied", f"“{campaign.name}” already applies to this order", "stacking")
    if len(applied) >= settings.max_per_order:
        return _max_per_order_refusal(settings.max_per_order)
    if settings.max_per_category and campaign.category:
        same = sum(1 for other in applied if other.category == campaign.category)
        if same >= settings.max_per_category:
            return Refusal(
                "max_per_category",
                f"at most {settings.max_per_category} incentives of the category “{campaign.category}” per order",
                "stacking.max_per_category",
            )
    for other in applied:
        if other.stacking == Stacking.EXCLUSIVE:
            return Refusal("exclusive", f"“{other.name}” applies alone", "stacking")
        if campaign.stacking == Stacking.EXCLUSIVE:
            return Refusal(
                "exclusive", f"“{campaign.name}” applies alone and “{other.name}” already applies", "stacking"
            )
        if other.stacking == Stacking.JOINT and campaign.category not in other.joint_categories:
            return Refusal(
                "not_joint",
                f"“{other.name}” combines only with {', '.join(other.joint_categories) or 'nothing'}",
                "stacking",
            )
        if campaign.stacking == Stacking.JOINT and other.category not in campaign.joint_categories:
            return Refusal(
                "not_joint",
                f"“{campaign.name}” combines only with {', '.join(campaign.joint_categories) or 'nothing'}",
                "stacking",
            )
    return None


@lru_cache(maxsize=64)
def _max_per_order_refusal(count: int) -> Refusal:
    """The same refusal for every candidate past the maximum (most of them, with many automatic promotions)."""
    return Refusal("max_per_order", f"at most {count} incentives per order", "stacking.max_per_order")


def incentive_terms(incentive: Incentive, currency: str) -> IncentiveTerms:
    def minor(value: Decimal | None) -> int | None:
        return None if value is None else to_minor(value, currency)

    return IncentiveTerms(
        kind=incentive.kind,
        percent=incentive.percent,
        amount=minor(incentive.amount),
        max_discount=minor(incentive.max_discount),
        buy_quantity=incentive.buy_quantity,
        get_quantity=incentive.get_quantity,
        multiplier=incentive.multiplier,
        points=incentive.points,
    )


def _matching_lines(incentive: Incentive, line_contexts: list[EvaluationContext], cart: Cart) -> set[int]:
    if not incentive.lines_rule:
        return {line.index for line in cart.lines}
    rule = getattr(incentive, "_promo_lines", None)
    matching = set()
    for line, line_context in zip(cart.lines, line_contexts, strict=True):
        holds = (
            rule(line_context)
            if rule is not None
            else condition_evaluate(incentive.lines_rule, line_context, path="lines_rule").result
        )
        if holds:
            matching.add(line.index)
    return matching


def _candidate_apply(
    candidate: Candidate,
    *,
    outcome: Outcome,
    settings: PromotionSettings,
    context: EvaluationContext,
    line_contexts: list[EvaluationContext],
    used: dict[tuple, Decimal],
) -> tuple[Applied | None, Refusal | None]:
    """Compute the candidate's incentives on the cart as it stands and check its budgets; apply if it fits."""
    campaign = candidate.campaign
    assert campaign is not None
    cart, currency = outcome.cart, outcome.cart.currency
    on_initial = settings.percent_base == PercentBase.INITIAL
    snapshot = [(line.remaining) for line in outcome.lines], outcome.shipping_left
    items: list[AppliedIncentive] = []
    for incentive in campaign._promo_incentives:
        if not incentive.is_active:
            continue
        terms = incentive_terms(incentive, currency)
        if incentive.kind == EffectKind.GIFT_CARD_CREDIT:
            card = candidate.gift_card
            terms = replace(terms, amount=to_minor(card.balance, currency) if card is not None else 0)
        effect = effect_compute(
            terms,
            lines=outcome.lines,
            matching=_matching_lines(incentive, line_contexts, cart),
            shipping_remaining=outcome.shipping_left,
            percent_on_initial=on_initial,
        )
        effect_apply(effect, lines=outcome.lines)
        outcome.shipping_left -= effect.shipping
        items.append(AppliedIncentive(incentive, effect))

    def undo() -> None:
        for line, remaining in zip(outcome.lines, snapshot[0], strict=True):
            line.remaining = remaining
        outcome.shipping_left = snapshot[1]

    if not any(item.effect.total or item.effect.multiplier or item.effect.points for item in items):
        undo()
        return None, Refusal("nothing_to_discount", "nothing in the cart matches this incentive", "incentives")
    uses, refusal = _budget_uses(candidate, items, outcome=outcome, used=used)
    if refusal is not None:
        undo()
        return None, refusal
    for use in uses:
        key = (use.limit.pk, use.bucket, use.subject)
        used[key] = used.get(key, Decimal("0")) + use.amount
    outcome.budget_uses.extend(uses)
    return Applied(candidate, items), None


def _budget_uses(
    candidate: Candidate, items: list[AppliedIncentive], *, outcome: Outcome, used: dict[tuple, Decimal]
) -> tuple[list[BudgetUse], Refusal | None]:
    """What each limit would take; a full limit refuses, or (action `reduce`) shrinks a money discount."""
    campaign = candidate.campaign
    assert campaign is not None  # (only candidates with a campaign get this far)
    currency = outcome.cart.currency
    uses: list[BudgetUse] = []
    for limit in campaign._promo_limits:
        mine = [item for item in items if limit.incentive_id is None or item.incentive.pk == limit.incentive_id]
        if not mine:
            continue
        key = budget_key(limit, code=candidate.code, customer=outcome.customer, now=outcome.now)
        if key is None:
            continue
        left = limit.limit - used.get(key, Decimal("0"))
        marker = None
        if limit.measure == LimitMeasure.DISTINCT_CUSTOMERS:
            marker = marker_key(key, outcome.customer)
            if marker is None:
                continue  # refused earlier: a distinct-customers limit needs the customer
            if used.get(marker, Decimal("0")) >= 1:
                continue  # this customer is counted already in this period
            amount = Decimal(1)
        elif limit.measure == LimitMeasure.REDEMPTIONS:
            amount = Decimal(1)
        elif limit.measure == LimitMeasure.ORDER_VALUE:
            amount = outcome.cart.subtotal
        elif limit.measure == LimitMeasure.POINTS:
            amount = Decimal(sum(item.effect.points for item in mine))
            # A multiplier's points are counted when the order earns (`services.order_multipliers_award`): here a
            # full points limit refuses it at once rather than promise points it cannot give.
            multiplier = any(item.effect.multiplier for item in mine)
            if not amount and not (multiplier and left < 1):
                continue  # (a discount of this campaign awards no points: nothing to count)
        else:
            amount = from_minor(sum(item.effect.total for item in mine), currency)
        if amount > left or (limit.measure == LimitMeasure.POINTS and not amount):
            if limit.measure == LimitMeasure.DISCOUNT_AMOUNT and limit.action == LimitAction.REDUCE and left > 0:
                amount = _reduce(mine, to_minor(left, currency), outcome=outcome, currency=currency)
            elif limit.measure == LimitMeasure.POINTS and limit.action == LimitAction.REDUCE and left >= 1:
                amount = Decimal(_points_reduce(mine, int(left)))
            else:
                what_by_measure: dict[str, str] = {
                    LimitMeasure.REDEMPTIONS: f"{limit.limit.normalize():f} redemptions",
                    LimitMeasure.DISTINCT_CUSTOMERS: f"{limit.limit.normalize():f} customers",
                    LimitMeasure.ORDER_VALUE: f"{money_format(limit.limit, currency)} of order value",
                    LimitMeasure.DISCOUNT_AMOUNT: f"{money_format(limit.limit, currency)} of discount",
                    LimitMeasure.POINTS: f"{limit.limit.normalize():f} loyalty points",
                }
                what = what_by_measure[limit.measure]
                period = "" if limit.period == LimitPeriod.TOTAL else f" per {limit.period}"
                per_scope: dict[str, str] = {LimitScope.CUSTOMER: " per customer", LimitScope.CODE: " per code"}
                per = per_scope.get(limit.scope, "")
                return [], Refusal(
                    "budget_exhausted", f"the budget of {what}{per}{period} is used up", f"limits[{limit.pk}]"
                )
        uses.append(BudgetUse(limit=limit, bucket=key[1], subject=key[2], amount=amount))
        if marker is not None:
            uses.append(BudgetUse(limit=limit, bucket=marker[1], subject=marker[2], amount=Decimal(1), marker=True))
    return uses, None


def _points_reduce(items: list[AppliedIncentive], allowed: int) -> int:
    """Shrink the incentives' bonus points to `allowed` in total (in their order); returns what they give now."""
    for item in items:
        keep = min(item.effect.points, allowed)
        allowed -= keep
        if keep != item.effect.points:
            item.effect = replace(item.effect, points=keep)
    return sum(item.effect.points for item in items)


def _reduce(items: list[AppliedIncentive], allowed: int, *, outcome: Outcome, currency: str) -> Decimal:
    """Shrink the incentives' discounts to `allowed` minor units in total (their lines get the rest back)."""
    by_line = {line.index: line for line in outcome.lines}
    for item in items:
        effect = item.effect
        keep = min(effect.total, allowed)
        allowed -= keep
        if keep == effect.total:
            continue
        smaller = effect_cap(effect, keep)
        for index, amount in effect.lines.items():
            by_line[index].remaining += amount - smaller.lines.get(index, 0)
        outcome.shipping_left += effect.shipping - smaller.shipping
        item.effect = smaller
    return from_minor(sum(item.effect.total for item in items), currency)


def minor_to_text(amount: int, currency: str) -> str:
    """
    `amount` minor units as the API writes money (`-12.05`, `1200` for JPY): what `from_minor(...)` formatted with
    the currency's decimals gives, in integer arithmetic (a validation answer writes ~160 amounts).
    """
    units = minor_units(currency)
    if not units:
        return str(amount)
    whole, part = divmod(-amount if amount < 0 else amount, 10**units)
    return f"{'-' if amount < 0 else ''}{whole}.{part:0{units}d}"
