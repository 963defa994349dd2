"""
Write services of promotions: campaigns, incentives, limits, codes (generic, generated, published),
settings and kill switches, and the checkout operations reserve / redeem / rollback.

Lock order of every transaction that touches budgets (so two of them never wait on each other in a circle):
1. the Redemption row being redeemed or rolled back (`select_for_update`), when there is one;
2. the LimitCounter rows, ascending primary key (`select_for_update`, after inserting missing counters
   in (limit, bucket, subject) order with ON CONFLICT DO NOTHING) — the counter machinery is the platform's
   (`apps.platform.limits`: counters_ensure, counters_lock, counter_take, counter_give_back), shared with loyalty;
3. GiftCard rows of the gift-card codes (`select_for_update`, ascending primary key; spent with a conditional
   UPDATE `balance >= amount`, see gift_cards.py);
4. Code rows (conditional UPDATE of `uses`), ascending primary key;
5. the Campaign row, only when a limit with action `pause` is reached.
Expired reservations found on the locked counters are released with SKIP LOCKED (their owner may be
redeeming them right now; it holds step 1 and will do it). Each counter is then taken with a conditional
UPDATE (`used + amount <= limit_value`): under the lock it cannot fail, and if it ever did the whole
transaction rolls back — a budget is never exceeded by a cent or a redemption.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.customers.choices import CustomerStatus
from apps.customers.outbox import domain_event_emit
from apps.platform.audit import audit_record, audit_snapshot
from apps.platform.kill_switch import global_kill_switch_set
from apps.platform.limits import (
    counter_give_back,
    counter_take,
    counters_ensure,
    counters_lock,
    limit_row_update,
)
from apps.platform.models import GlobalKillSwitch
from loyalty_site.lib.conditions import condition_validate
from loyalty_site.lib.errors import ConflictError, DomainError
from loyalty_site.lib.money import decimals_error, shop_currency, to_shop
from loyalty_site.lib.tasks import enqueue_on_commit

from . import signals
from .choices import CampaignStatus, CampaignType, EffectKind, LimitAction, LimitMeasure, LimitScope, RedemptionStatus
from .codes import owner_notify, pool_check
from .eligibility import (
    MARKER,
    REWARD_REF,
    Cart,
    Outcome,
    budget_key,
    budget_keys,
    candidates_load,
    candidates_may_apply,
    code_normalize,
    from_minor,
    promotion_settings,
    promotions_evaluate,
    reward_codes,
)
from .gift_cards import gift_cards_give_back, gift_cards_lock, gift_cards_spend
from .holdout import holdout_partition, holdouts_record
from .models import (
    CAMPAIGN_FIELDS,
    Campaign,
    Code,
    CodeBatch,
    Incentive,
    KillSwitchEvent,
    Limit,
    LimitCounter,
    LimitTake,
    PromotionSettings,
    Redemption,
    RedemptionItem,
)

RULE_SCOPES = ("customer", "cart")
LINE_SCOPES = ("customer", "cart", "line")
CODE_ALPHABET = string.ascii_uppercase + string.digits
# Look-alikes left out of generated codes: 0/O, 1/I/L.
SAFE_ALPHABET = "".join(ch for ch in CODE_ALPHABET if ch not in "0O1IL")
PATTERN = re.compile(r"^[A-Z0-9#?*\-_]{1,60}$")
GENERATE_CHUNK = 3000  # SQLite: 10 parameters a row, under its 32,766 limit
GENERATE_CHUNK_COPY = 100_000  # PostgreSQL: codes per COPY + INSERT … SELECT
MAX_GENERATE = 2_000_000


# --- Campaigns ---------------------------------------------------------------------------------------


def shop_decimals_error(amount: Decimal) -> str | None:
    """A money amount of promotions is in the shop currency: no more decimals than its minor units."""
    return decimals_error(amount, shop_currency())


def rule_errors(rule: Any, *, path: str, scopes: tuple[str, ...]) -> dict[str, str]:
    """Problems of a validation (or line) rule by JSON path, e.g. {"validation_rule.all[1].value": "..."}."""
    return {
        (
            f"{path}.{error.path}" if error.path and not error.path.startswith(path) else error.path or path
        ): error.message
        for error in condition_validate(rule, path=path, scopes=scopes)
    }


MAX_HOLDOUT_PERCENT = 50


def _campaign_check(campaign: Campaign) -> None:
    errors: dict[str, str] = {}
    if not campaign.name.strip():
        errors["name"] = "A campaign needs a name."
    elif Campaign.objects.filter(name__iexact=campaign.name.strip()).exclude(pk=campaign.pk).exists():
        errors["name"] = "Another campaign has this name."
    if campaign.starts_at and campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        errors["ends_at"] = "The end must come after the start."
    if not isinstance(campaign.weekdays, list) or any(
        isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7 for day in campaign.weekdays
    ):
        errors["weekdays"] = "Weekdays are a list of numbers 1 (Monday) to 7 (Sunday)."
    if bool(campaign.hours_from) != bool(campaign.hours_until):
        errors["hours_until"] = "Give both ends of the hours, or neither."
    errors.update(rule_errors(campaign.validation_rule, path="validation_rule", scopes=RULE_SCOPES))
    holdout = campaign.holdout_percent
    if isinstance(holdout, bool) or not isinstance(holdout, int) or not 0 <= holdout <= MAX_HOLDOUT_PERCENT:
        errors["holdout_percent"] = f"A whole percent from 0 to {MAX_HOLDOUT_PERCENT}."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def campaign_create(*, name: str, **fields: Any) -> Campaign:
    """Create a campaign; its validation rule is checked against the catalog with paths."""
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown campaign field."))
    campaign = Campaign(name=" ".join(name.split()), **fields)
    _campaign_check(campaign)
    campaign.save()
    audit_record(action="created", obj=campaign)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, **fields: Any) -> Campaign:
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown campaign field."))
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    before = audit_snapshot(campaign)
    for key, value in fields.items():
        setattr(campaign, key, value)
    _campaign_check(campaign)
    campaign.save()
    audit_record(action="updated", obj=campaign, before=before)
    return campaign


INCENTIVE_NEEDS: dict[str, tuple[str, ...]] = {
    EffectKind.PERCENT_ORDER: ("percent",),
    EffectKind.PERCENT_LINES: ("percent",),
    EffectKind.FIXED_ORDER: ("amount",),
    EffectKind.FIXED_PER_UNIT: ("amount",),
    EffectKind.FREE_SHIPPING: (),
    EffectKind.FIXED_PRICE_ITEM: ("amount",),
    EffectKind.BUY_X_GET_Y: ("buy_quantity", "get_quantity"),
    EffectKind.POINTS_MULTIPLIER: ("multiplier",),
    EffectKind.BONUS_POINTS: ("points",),
    EffectKind.GIFT_CARD_CREDIT: (),  # the card's balance is the amount
}


# One ordered list: the services accept these, the admin inline edits them (position is its ordering handle).
INCENTIVE_FIELDS = (
    "kind",
    "percent",
    "amount",
    "max_discount",
    "buy_quantity",
    "get_quantity",
    "multiplier",
    "points",
    "lines_rule",
    "is_active",
    "position",
)
MAX_BONUS_POINTS = 1_000_000
MAX_MULTIPLIER = Decimal(100)


def incentive_check(incentive: Incentive) -> None:
    """ValidationError by field when the incentive is not complete and sound (the admin form asks it too)."""
    errors: dict[str, str] = {}
    kind = incentive.kind
    if kind not in INCENTIVE_NEEDS:
        errors["kind"] = f"Unknown kind; one of {', '.join(INCENTIVE_NEEDS)}."
    else:
        for name in INCENTIVE_NEEDS[kind]:
            if getattr(incentive, name) in (None, ""):
                errors[name] = f"A {kind} incentive needs {name}."
    gift_campaign = incentive.campaign.type == CampaignType.GIFT_CARDS
    if (kind == EffectKind.GIFT_CARD_CREDIT) != gift_campaign and "kind" not in errors:
        errors["kind"] = (
            "A gift-cards campaign gives gift-card credit, and only it does."
            if gift_campaign
            else "Gift-card credit belongs to a campaign of the type “gift cards”."
        )
    if incentive.points is not None and not 0 < incentive.points <= MAX_BONUS_POINTS:
        errors["points"] = f"Bonus points are a whole number from 1 to {MAX_BONUS_POINTS:,}."
    if incentive.multiplier is not None and not Decimal(1) < incentive.multiplier <= MAX_MULTIPLIER:
        errors["multiplier"] = (
            f"A points multiplier is more than 1 and at most {MAX_MULTIPLIER} (2 doubles the points)."
        )
    if incentive.percent is not None and not Decimal(0) < incentive.percent <= Decimal(100):
        errors["percent"] = "A percentage is more than 0 and at most 100."
    for name in ("amount", "max_discount"):
        value = getattr(incentive, name)
        if value is not None and value < 0:
            errors[name] = "An amount cannot be negative."
        elif value is not None and (problem := shop_decimals_error(value)):
            errors[name] = problem
    errors.update(rule_errors(incentive.lines_rule, path="lines_rule", scopes=LINE_SCOPES))
    if errors:
        raise ValidationError(errors)


def _unknown_fields(fields: dict[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), f"Unknown {what} field."))


@transaction.atomic
def incentive_create(*, campaign: Campaign, kind: str, user: Any = None, **fields: Any) -> Incentive:
    """Add an effect to a campaign; the fields its kind needs are required, the line rule validated; audited."""
    _unknown_fields(fields, INCENTIVE_FIELDS, "incentive")
    incentive = Incentive(campaign=campaign, kind=kind, **fields)
    incentive_check(incentive)
    incentive.save()
    audit_record(action="created", obj=incentive, user=user)
    return incentive


@transaction.atomic
def incentive_update(*, incentive: Incentive, user: Any = None, **fields: Any) -> Incentive:
    """Change an incentive (checked like a new one); audited with old and new values."""
    _unknown_fields(fields, INCENTIVE_FIELDS, "incentive")
    incentive = Incentive.objects.select_for_update().get(pk=incentive.pk)
    before = audit_snapshot(incentive)
    for key, value in fields.items():
        setattr(incentive, key, value)
    incentive_check(incentive)
    incentive.save()
    audit_record(action="updated", obj=incentive, before=before, user=user)
    return incentive


@transaction.atomic
def incentive_delete(*, incentive: Incentive, user: Any = None) -> None:
    """Remove an incentive that never gave a discount (one that did stays for the redemptions log: switch it off)."""
    if incentive.redemption_items.exists():
        raise ConflictError(
            "This incentive was redeemed: switch it off instead (redemptions refer to it).",
            path="incentive",
            code="still_referenced",
        )
    audit_record(action="deleted", obj=incentive, before=audit_snapshot(incentive), user=user)
    incentive.delete()


LIMIT_FIELDS = {"incentive", "measure", "limit", "period", "scope", "action"}
MONEY_MEASURES = (LimitMeasure.DISCOUNT_AMOUNT, LimitMeasure.ORDER_VALUE)


def limit_check(limit: Limit) -> None:
    """ValidationError by field when the limit does not make sense (the admin form asks it too)."""
    errors: dict[str, str] = {}
    if (
        limit.incentive_id is not None
        and limit.incentive is not None
        and limit.incentive.campaign_id != limit.campaign_id
    ):
        errors["incentive"] = "The incentive belongs to another campaign."
    if limit.measure not in LimitMeasure.values:
        errors["measure"] = f"One of {', '.join(LimitMeasure.values)}."
    if limit.limit is None or limit.limit <= 0:
        errors["limit"] = "A limit is a positive number."
    elif limit.measure in MONEY_MEASURES and (problem := shop_decimals_error(limit.limit)):
        errors["limit"] = problem
    elif limit.measure not in MONEY_MEASURES and limit.limit != limit.limit.to_integral_value():
        errors["limit"] = f"A number of {limit.measure.replace('_', ' ')} is a whole number."
    if limit.action == LimitAction.REDUCE and limit.measure not in (LimitMeasure.DISCOUNT_AMOUNT, LimitMeasure.POINTS):
        errors["action"] = "Only a discount amount or points can be reduced to what is left."
    if limit.measure == LimitMeasure.DISTINCT_CUSTOMERS and limit.scope in (LimitScope.CUSTOMER,):
        errors["scope"] = "Distinct customers are counted over the campaign, an incentive or a code."
    if limit.scope == LimitScope.INCENTIVE and limit.incentive_id is None:
        errors["incentive"] = "An incentive-scoped limit names its incentive."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def limit_create(
    *,
    campaign: Campaign,
    measure: str,
    limit: Decimal,
    incentive: Incentive | None = None,
    user: Any = None,
    **fields: Any,
) -> Limit:
    """Add a budget to a campaign (or to one of its incentives); audited."""
    _unknown_fields(fields, LIMIT_FIELDS, "limit")
    row = Limit(campaign=campaign, incentive=incentive, measure=measure, limit=limit, **fields)
    limit_check(row)
    row.save()
    audit_record(action="created", obj=row, user=user)
    return row


@transaction.atomic
def limit_update(*, limit: Limit, user: Any = None, value: Decimal | None = None, **fields: Any) -> Limit:
    """
    Change a limit; its counters follow a new value (a lower limit never takes back what was used). What it
    measures and how it counts (measure, period, scope, incentive) cannot change once something was counted:
    make a new limit instead (409).
    """
    _unknown_fields(fields, LIMIT_FIELDS, "limit")
    if value is not None:
        fields["limit"] = value
    return limit_row_update(
        limit,
        fields,
        counter_model=LimitCounter,
        shape=("measure", "period", "scope", "incentive"),
        check=limit_check,
        value=lambda row: row.limit,
        message="This limit has counted usage: what it measures cannot change; add a new limit instead.",
        path="measure",
        user=user,
        exclude=Q(subject__contains=MARKER),  # markers stay at 1
    )


@transaction.atomic
def limit_delete(*, limit: Limit, user: Any = None) -> None:
    """Remove a budget (its counters go with it; redemptions keep their discounts); audited."""
    audit_record(action="deleted", obj=limit, before=audit_snapshot(limit), user=user)
    limit.delete()


# --- Codes ---------------------------------------------------------------------------------------------


@transaction.atomic
def code_create(
    *,
    campaign: Campaign,
    code: str,
    max_uses: int | None = None,
    expires_at: datetime | None = None,
    expires_days_after_publication: int | None = None,
) -> Code:
    """One generic code (`SUMMER24`), unique case-insensitively."""
    text = code_normalize(code)
    if not text or len(text) > 64:
        raise ValidationError({"code": "A code has 1 to 64 characters."})
    if Code.objects.filter(code=text).exists():
        raise ValidationError({"code": f"The code {text} exists already."})
    return Code.objects.create(
        campaign=campaign,
        code=text,
        max_uses=max_uses,
        expires_at=expires_at,
        expires_days_after_publication=expires_days_after_publication,
    )


def pattern_capacity(pattern: str) -> int:
    sizes = {"#": 10, "?": 26, "*": len(SAFE_ALPHABET)}
    capacity = 1
    for char in pattern:
        capacity *= sizes.get(char, 1)
    return capacity


_PATTERN_POOLS = {"#": string.digits, "?": string.ascii_uppercase, "*": SAFE_ALPHABET}


def _pool_characters(pool: str, length: int) -> str:
    """
    `length` characters, each uniform over `pool`: bytes of `secrets.token_bytes`, those at or above the largest
    multiple of the pool size dropped (so `byte % size` has no modulo bias), the rest mapped by one translation
    table. Both steps run in C (`bytes.translate`), not per character in Python.
    """
    size = len(pool)
    accepted = 256 - 256 % size
    table = bytes(ord(pool[value % size]) for value in range(256))
    rejected = bytes(range(accepted, 256))
    drawn = bytearray()
    while len(drawn) < length:
        missing = length - len(drawn)
        drawn += secrets.token_bytes(missing * 256 // accepted + 16).translate(table, rejected)
    return drawn[:length].decode("ascii")


def _pattern_codes(pattern: str, count: int) -> set[str]:
    """
    Up to `count` distinct codes from the pattern. Every slot character is drawn independently and uniformly from
    its pool (`_pool_characters`), so a code is uniform over every code the pattern allows, and unguessable; the
    codes are assembled per run of slots by slicing, with no per-character Python loop.
    """
    parts: list[Iterable[str]] = []
    for symbol, run in itertools.groupby(pattern, key=lambda char: char if char in _PATTERN_POOLS else ""):
        text = "".join(run)
        if not symbol:
            parts.append(itertools.repeat(text))
            continue
        width = len(text)
        drawn = _pool_characters(_PATTERN_POOLS[symbol], count * width)
        parts.append([drawn[offset : offset + width] for offset in range(0, count * width, width)])
    return set(map("".join, zip(*parts, strict=False)))


def _codes_insert_rows(*, batch: CodeBatch, texts: set[str], limit: int, **values: Any) -> int:
    """
    SQLite: one parameterised multi-row INSERT … ON CONFLICT (code) DO NOTHING; the number inserted. A draw larger
    than `limit` (oversampled after collisions) first drops the codes that exist, then keeps `limit` of the rest.
    """
    if len(texts) > limit:
        taken = set(Code.objects.filter(code__in=texts).values_list("code", flat=True))
        texts = set(itertools.islice(texts - taken, limit))
    if not texts:
        return 0
    columns = ["campaign_id", "batch_id", "code", *values]
    rows = [(batch.campaign_id, batch.pk, text, *values.values()) for text in texts]
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Code._meta.db_table} ({', '.join(columns)}) VALUES {placeholders} "  # noqa: S608 - names from the model
            "ON CONFLICT (code) DO NOTHING",
            [value for row in rows for value in row],
        )
        return max(cursor.rowcount, 0)


def _codes_copy_rows(*, batch: CodeBatch, texts: set[str], limit: int, **values: Any) -> int:
    """
    PostgreSQL: COPY the chunk's codes into a temporary table (psycopg 3's COPY protocol, no per-row parameters),
    then one INSERT … SELECT … ON CONFLICT (code) DO NOTHING; the number inserted. The conflict target is the unique
    index of `code`; with the upper-case check constraint it makes codes unique case-insensitively. A draw larger
    than `limit` (oversampled after collisions) inserts at most `limit` of its codes that do not exist yet.
    """
    oversampled = len(texts) > limit
    keep = (
        f"WHERE NOT EXISTS (SELECT 1 FROM {Code._meta.db_table} taken WHERE taken.code = promo_code_draw.code) "  # noqa: S608 - names from the model
        "LIMIT %s "
        if oversampled
        else ""
    )
    columns = ["campaign_id", "batch_id", "code", *values]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS promo_code_draw (code varchar(64) NOT NULL) ON COMMIT DROP"
        )
        cursor.execute("TRUNCATE promo_code_draw")  # an outer transaction keeps the table between chunks
        with cursor.cursor.copy("COPY promo_code_draw (code) FROM STDIN") as copy:
            copy.write("\n".join(texts) + "\n")
        cursor.execute(
            f"INSERT INTO {Code._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 - names from the model
            f"SELECT %s, %s, code, {', '.join(['%s'] * len(values))} FROM promo_code_draw {keep}"
            "ON CONFLICT (code) DO NOTHING",
            [batch.campaign_id, batch.pk, *values.values(), *([limit] if oversampled else [])],
        )
        return max(cursor.rowcount, 0)


def codes_generate(
    *,
    campaign: Campaign,
    pattern: str,
    count: int,
    expires_at: datetime | None = None,
    expires_days_after_publication: int | None = None,
    progress: Any = None,
) -> CodeBatch:
    """
    Generate `count` unique single-use codes from a pattern (`#` digit, `?` letter, `*` letter or digit
    without look-alikes, anything else literal: `SUMMER-####-????`). Set-based, in chunks, each in its own
    transaction so `batch.generated` shows progress: on PostgreSQL 100,000 codes COPYed into a temporary table and
    inserted with one INSERT … SELECT … ON CONFLICT DO NOTHING; on SQLite multi-row INSERTs of 3,000. Codes that
    collide with existing ones are drawn again; a pattern so full that draws keep colliding is refused.
    `progress(generated, count)` is called after each chunk.
    """
    pattern = pattern.strip().upper()
    if not PATTERN.match(pattern) or not any(char in "#?*" for char in pattern):
        raise ValidationError(
            {"pattern": "A pattern uses # (digit), ? (letter), * (letter or digit) and literal A-Z 0-9 - _."}
        )
    if not 1 <= count <= MAX_GENERATE:
        raise ValidationError({"count": f"Between 1 and {MAX_GENERATE:,} codes at a time."})
    if count * 2 > pattern_capacity(pattern):
        raise ValidationError({"pattern": f"The pattern allows {pattern_capacity(pattern):,} codes; use a longer one."})
    batch = CodeBatch.objects.create(campaign=campaign, pattern=pattern, requested=count)
    postgres = connection.vendor == "postgresql"
    chunk = GENERATE_CHUNK_COPY if postgres else GENERATE_CHUNK
    insert = _codes_copy_rows if postgres else _codes_insert_rows
    values = {
        "max_uses": 1,
        "uses": 0,
        "expires_at": expires_at,
        "expires_days_after_publication": expires_days_after_publication,
        "publication_ref": "",
        "is_active": True,
        "created_at": timezone.now(),
    }
    generated = 0
    attempts = 0
    free_share = 1.0  # the share of the last short draw that was free: the next draw is oversampled by its inverse
    while generated < count:
        attempts += 1
        if attempts > count // chunk + 50:
            raise DomainError("Too many collisions: the pattern is nearly full.", path="pattern")
        wanted = count - generated
        draw = wanted if free_share >= 1 else math.ceil(wanted / free_share * 1.25)
        texts = _pattern_codes(pattern, min(chunk, draw))
        with transaction.atomic():
            inserted = insert(batch=batch, texts=texts, limit=wanted, **values)
            generated += inserted
            CodeBatch.objects.filter(pk=batch.pk).update(generated=generated)
        if inserted < wanted:
            free_share = max(inserted / len(texts), 1 / 64)
        if progress is not None:
            progress(generated, count)
    CodeBatch.objects.filter(pk=batch.pk).update(finished_at=timezone.now())
    Campaign.objects.filter(pk=campaign.pk).update(low_pool_alerted_at=None)  # the pool grew: alert re-armed
    campaign.low_pool_alerted_at = None
    batch.refresh_from_db()
    return batch


def code_publish(*, campaign: Campaign, customer: Any, ref: str = "", now: datetime | None = None) -> Code:
    """
    Assign a free code of the campaign to a customer (recording when and by whom). The same `ref`
    (e.g. `run:12:s3`) returns the code it published before: a retried publication is a no-op.
    A customer in the campaign's holdout gets no code: they are recorded as held out (`CampaignHoldout`, kept by
    a caller that handles the refusal) and `ConflictError` `held_out` is raised.
    """
    now = now or timezone.now()
    if campaign.holdout_percent and getattr(customer, "pk", None):
        _receive, kept_out = holdout_partition(campaign=campaign, customer_ids=[customer.pk])
        if kept_out and not (ref and Code.objects.filter(campaign=campaign, publication_ref=ref).exists()):
            holdouts_record(campaign=campaign, customer_ids=kept_out, ref=ref or "publish", now=now)
            raise ConflictError(
                f"This customer is in the holdout of “{campaign.name}” (kept out to measure it): no code published.",
                path="customer",
                code="held_out",
            )
    return _code_publish(campaign=campaign, customer=customer, ref=ref, now=now)


@transaction.atomic
def _code_publish(*, campaign: Campaign, customer: Any, ref: str, now: datetime) -> Code:
    if ref:
        earlier = Code.objects.filter(campaign=campaign, publication_ref=ref).first()
        if earlier is not None:
            return earlier
    free = (
        Code.objects.select_for_update(skip_locked=True)
        .filter(campaign=campaign, customer__isnull=True, published_at__isnull=True, is_active=True, uses=0)
        .order_by("pk")
        .first()
    )
    if free is None:
        raise ConflictError(
            f"The campaign “{campaign.name}” has no free code left to publish.", path="campaign", code="codes_exhausted"
        )
    free.customer = customer
    free.published_at = now
    free.publication_ref = ref[:120]
    free.save(update_fields=["customer", "published_at", "publication_ref"])
    domain_event_emit(
        signal=signals.voucher_published,
        name="voucher.published",
        customer=customer,
        payload={"code": free.code, "campaign_id": campaign.pk, "campaign": campaign.name},
        cause=ref,
        sender=Code,
        code=free,
    )
    pool_check(campaign=campaign, now=now)
    return free


# --- Settings and kill switches ---------------------------------------------------------------------------


def _settings_locked() -> PromotionSettings:
    current = PromotionSettings.objects.select_for_update().order_by("pk").first()
    return current or PromotionSettings.objects.create()


@transaction.atomic
def settings_update(**fields: Any) -> PromotionSettings:
    allowed = {"max_per_order", "max_per_category", "percent_base", "failure_mode", "reservation_minutes"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown setting."))
    current = _settings_locked()
    for key, value in fields.items():
        setattr(current, key, value)
    current.full_clean()
    current.save()
    return current


@transaction.atomic
def kill_switch_set(*, on: bool, reason: str = "", user: Any = None, actor: str = "") -> GlobalKillSwitch:
    """
    Turn the global kill switch over every incentive on or off (`apps.platform.kill_switch`: audited who, when,
    why) and announce it as the `promotions.kill_switch` trigger so a workflow can alert the team.
    """
    current = global_kill_switch_set(on=on, reason=reason, user=user, actor=actor)
    domain_event_emit(
        signal=signals.kill_switch_changed,
        name="promotions.kill_switch",
        customer=None,
        payload={"on": on, "reason": current.reason, "user_id": current.changed_by_id, "actor": current.actor},
        cause=f"kill_switch:{'on' if on else 'off'}",
        sender=GlobalKillSwitch,
        settings=current,
    )
    return current


@transaction.atomic
def campaign_switch(*, campaign: Campaign, on: bool, user: Any = None, reason: str = "", actor: str = "") -> Campaign:
    """A campaign's own switch: off pauses it (refused with `campaign_paused`), on makes it active again."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    before = audit_snapshot(campaign, fields=["status"])
    campaign.status = CampaignStatus.ACTIVE if on else CampaignStatus.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    KillSwitchEvent.objects.create(
        campaign=campaign, turned_on=not on, reason=reason[:255], user_id=user_id, actor=actor[:120]
    )
    audit_record(action="activated" if on else "paused", obj=campaign, before=before, user=user)
    return campaign


@transaction.atomic
def incentive_switch(
    *, incentive: Incentive, on: bool, user: Any = None, reason: str = "", actor: str = ""
) -> Incentive:
    incentive.is_active = on
    incentive.save(update_fields=["is_active"])
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    KillSwitchEvent.objects.create(
        campaign_id=incentive.campaign_id,
        incentive=incentive,
        turned_on=not on,
        reason=reason[:255],
        user_id=user_id,
        actor=actor[:120],
    )
    return incentive


# --- Reserve, redeem, rollback ---------------------------------------------------------------------------


@dataclass
class _Locked:
    counters: dict[tuple, LimitCounter]


def _counters_lock(candidates: list, *, customer: Any, now: datetime, extra_ids: set[int]) -> _Locked:
    """Create the missing counters, then lock every counter the candidates (and `extra_ids`) may touch."""
    keys: dict[tuple, Decimal] = {}
    for candidate in candidates:
        for limit in getattr(candidate.campaign, "_promo_limits", []):
            for key in budget_keys(limit, code=candidate.code, customer=customer, now=now):
                keys[key] = Decimal(1) if MARKER in key[2] else limit.limit
    counters_ensure(LimitCounter, keys)
    if not keys and not extra_ids:
        return _Locked(counters={})
    rows = list(counters_lock(LimitCounter, keys, extra_ids=extra_ids).values())
    _expired_release(counter_ids=[row.pk for row in rows], now=now)
    fresh = {row.pk: row for row in LimitCounter.objects.filter(pk__in=[row.pk for row in rows])}
    return _Locked(counters={(row.limit_id, row.bucket, row.subject): fresh[row.pk] for row in rows})


def _expired_release(*, counter_ids: list[int], now: datetime) -> int:
    holders = LimitTake.objects.filter(counter_id__in=counter_ids).values("redemption_id")
    expired = list(
        Redemption.objects.select_for_update(skip_locked=True)
        .filter(status=RedemptionStatus.RESERVED, expires_at__lte=now, pk__in=holders)
        .order_by("pk")
    )
    for redemption in expired:
        _give_back(redemption, status=RedemptionStatus.RELEASED)
    return len(expired)


def _give_back(redemption: Redemption, *, status: str, points_done: bool = False) -> None:
    """
    Return everything the redemption still holds (budget counters, code uses) and set its status. `points_done`:
    the points limits were settled by `_bonus_points_take_back` (they free only the points actually taken back).
    """
    takes = redemption.takes.order_by("counter_id")
    if points_done:
        takes = takes.exclude(counter__limit__measure=LimitMeasure.POINTS)
    for take in takes:
        back = take.amount - take.returned
        if back:
            counter_give_back(LimitCounter, take.counter_id, back)
            LimitTake.objects.filter(pk=take.pk).update(returned=take.amount)
    gift_cards_give_back(redemption, reason=str(status))
    for code_id in sorted(redemption.items.exclude(code=None).values_list("code_id", flat=True)):
        Code.objects.filter(pk=code_id, uses__gt=0).update(uses=F("uses") - 1)
    redemption.status = status
    redemption.save(update_fields=["status"])


@transaction.atomic
def reservations_release_expired(*, now: datetime | None = None) -> int:
    """Release every reservation past its TTL (periodic job; redeem also releases those in its way)."""
    now = now or timezone.now()
    expired = list(
        Redemption.objects.select_for_update(skip_locked=True)
        .filter(status=RedemptionStatus.RESERVED, expires_at__lte=now)
        .order_by("pk")[:1000]
    )
    for redemption in expired:
        _give_back(redemption, status=RedemptionStatus.RELEASED)
    return len(expired)


THRESHOLDS = (50, 80, 100)


def _thresholds_announce(limit: Limit, *, before: Decimal, after: Decimal, subject: str) -> None:
    """
    `campaign.budget_threshold` once for each of 50/80/100 % a campaign-wide budget crosses, and an e-mail to the
    campaign's owner (after commit).
    """
    if subject:
        return  # per-customer and per-code limits are not budgets to watch
    for percent in THRESHOLDS:
        mark = limit.limit * percent / 100
        if before < mark <= after:
            domain_event_emit(
                signal=signals.budget_threshold,
                name="campaign.budget_threshold",
                customer=None,
                payload={
                    "campaign_id": limit.campaign_id,
                    "limit_id": limit.pk,
                    "measure": limit.measure,
                    "percent": percent,
                    "used": str(after),
                    "limit": str(limit.limit),
                },
                cause=f"budget:{limit.pk}:{percent}",
                sender=Limit,
                limit=limit,
                percent=percent,
            )
            campaign = Campaign.objects.only("pk", "name", "owner_id").get(pk=limit.campaign_id)
            owner_notify(
                campaign=campaign,
                subject=f"Budget at {percent} %: {campaign.name}",
                body=f"The budget “{limit}” of the campaign “{campaign.name}” is at {percent} % "
                f"({after} of {limit.limit} used)."
                + (" The campaign is paused." if percent == 100 and limit.action == LimitAction.PAUSE else ""),
            )


def _take(outcome: Outcome, locked: _Locked, redemption: Redemption) -> None:
    uses = sorted(outcome.budget_uses, key=lambda use: (use.limit.pk, use.bucket, use.subject))
    takes = []
    for use in sorted(uses, key=lambda use: locked.counters[(use.limit.pk, use.bucket, use.subject)].pk):
        counter = locked.counters[(use.limit.pk, use.bucket, use.subject)]
        if not counter_take(
            LimitCounter, counter.pk, use.amount
        ):  # cannot happen under the lock; never exceed a budget if it ever does
            raise ConflictError(
                "The budget was used up meanwhile.", path=f"limits[{use.limit.pk}]", code="budget_exhausted"
            )
        takes.append(LimitTake(redemption=redemption, counter=counter, amount=use.amount))
        if use.marker:
            continue
        _thresholds_announce(use.limit, before=counter.used, after=counter.used + use.amount, subject=counter.subject)
        if use.limit.action == LimitAction.PAUSE and counter.used + use.amount >= counter.limit_value:
            Campaign.objects.filter(pk=use.limit.campaign_id).update(status=CampaignStatus.PAUSED)
    LimitTake.objects.bulk_create(takes)
    gift_cards_spend(outcome, redemption)
    codes = sorted(
        (applied.candidate.code for applied in outcome.applied if applied.candidate.code), key=lambda code: code.pk
    )
    for code in codes:
        used = (
            Code.objects.filter(pk=code.pk)
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
            .update(uses=F("uses") + 1)
        )
        if used != 1:
            raise ConflictError(f"The code {code.code} has already been used.", path="codes", code="code_used")


def _refusal_raise(outcome: Outcome) -> None:
    """Redeem and reserve refuse when a code sent fails (the checkout expected it) or nothing applies."""
    failed = [candidate for candidate in outcome.skipped if candidate.code_text]
    if failed:
        first = failed[0]
        assert first.refusal is not None
        raise DomainError(
            f"{first.code_text}: {first.refusal.message}", path=f"codes[{first.index}]", code=first.refusal.reason
        )
    if not outcome.applied:
        reasons = sorted({candidate.refusal.reason for candidate in outcome.skipped if candidate.refusal})
        code = reasons[0] if len(reasons) == 1 else "nothing_to_redeem"
        raise DomainError("No incentive applies to this cart.", path="codes", code=code)


def _checkout(
    *,
    cart: Cart,
    customer: Any,
    codes: list[str],
    session: str,
    status: str,
    reservation: Redemption | None,
    request: dict[str, Any] | list[Any],
    order_ref: str = "",
    now: datetime | None = None,
    ip: str | None = None,
    device: str = "",
) -> Redemption:
    now = now or timezone.now()
    if customer is not None and customer.status == CustomerStatus.BLOCKED:  # (a fraud rule's block, too)
        raise DomainError("This customer is blocked and cannot redeem.", path="customer", code="customer_blocked")
    reward_codes([code_normalize(text) for text in codes], save=True)  # loyalty reward codes become promotion codes
    if reservation is None:
        # Probe without locks: a request that would be refused anyway (budget used up, bad code) is answered
        # at once instead of queueing on the budget counters behind the redemptions that do succeed.
        _refusal_raise(promotions_evaluate(cart=cart, customer=customer, codes=codes, now=now))
    # Lock the budget counters of the candidates that pass every other check (most automatic promotions miss a
    # cart's rules: locking, and creating, every campaign's counters cost a redeem a third of its CPU), then evaluate
    # under those locks. Should the evaluation under the locks take from a counter that is not locked (a campaign
    # or the customer changed in between), everything since the savepoint is undone — the locks taken after it
    # are released — and the evaluation runs again with every candidate's counters locked, as it always did.
    point = transaction.savepoint()
    locked, outcome = _checkout_evaluate(
        cart=cart, customer=customer, codes=codes, now=now, reservation=reservation, lock_all=False
    )
    if all((use.limit.pk, use.bucket, use.subject) in locked.counters for use in outcome.budget_uses):
        transaction.savepoint_commit(point)
    else:
        transaction.savepoint_rollback(point)
        locked, outcome = _checkout_evaluate(
            cart=cart, customer=customer, codes=codes, now=now, reservation=reservation, lock_all=True
        )
    failed = [candidate for candidate in outcome.skipped if candidate.code_text]
    if failed:
        first = failed[0]
        assert first.refusal is not None
        raise DomainError(
            f"{first.code_text}: {first.refusal.message}", path=f"codes[{first.index}]", code=first.refusal.reason
        )
    if not outcome.applied:
        raise DomainError("No incentive applies to this cart.", path="codes", code="nothing_to_redeem")
    currency = cart.currency
    fields = {
        "session": session,
        "customer": customer,
        "status": status,
        "currency": currency,
        "order_total": cart.subtotal + cart.shipping,
        "discount_total": from_minor(outcome.discount_total, currency),
        "gift_card_total": from_minor(outcome.credit_total, currency),
        "order_ref": order_ref,
        "request": request,
        "expires_at": now + timedelta(minutes=promotion_settings().reservation_minutes)
        if status == RedemptionStatus.RESERVED
        else None,
        "redeemed_at": now if status == RedemptionStatus.REDEEMED else None,
        # The shopper's IP / device as the shop sent them (a redeem without them keeps the reservation's).
        "ip": ip or (reservation.ip if reservation is not None else None),
        "device": device or (reservation.device if reservation is not None else ""),
    }
    if reservation is not None:
        for key, value in fields.items():
            setattr(reservation, key, value)
        reservation.save()
        reservation.items.all().delete()
        reservation.takes.all().delete()
        redemption = reservation
    else:
        redemption = Redemption.objects.create(created_at=now, **fields)
    _take(outcome, locked, redemption)
    RedemptionItem.objects.bulk_create(
        [
            RedemptionItem(
                redemption=redemption,
                campaign=applied.candidate.campaign,
                incentive=item.incentive,
                code=applied.candidate.code,
                discount=from_minor(item.effect.total, currency),
                points=item.effect.points,
            )
            for applied in outcome.applied
            for item in applied.incentives
        ]
    )
    if status == RedemptionStatus.REDEEMED:
        _reward_codes_use(outcome)
        _bonus_points_award(outcome, redemption, customer=customer, now=now)
        if order_ref:
            _order_link_now(redemption, order_ref=order_ref, outcome=outcome)
    if status == RedemptionStatus.REDEEMED and customer is not None:
        domain_event_emit(
            signal=signals.voucher_redeemed,
            name="voucher.redeemed",
            customer=customer,
            payload={
                "redemption_id": redemption.pk,
                "codes": [applied.candidate.code_text for applied in outcome.applied if applied.candidate.code_text],
                "campaign_ids": [
                    applied.candidate.campaign.pk for applied in outcome.applied if applied.candidate.campaign
                ],
                "discount_total": str(redemption.discount_total),
            },
            cause=f"redemption:{redemption.pk}",
            sender=Redemption,
            redemption=redemption,
        )
    redemption._outcome = outcome  # (the API answers with the computation)
    return redemption


def _checkout_evaluate(
    *, cart: Cart, customer: Any, codes: list[str], now: datetime, reservation: Redemption | None, lock_all: bool
) -> tuple[_Locked, Outcome]:
    """
    The candidates read now, the budget counters locked (of every candidate with `lock_all`, else of those that
    pass every check but budgets and stacking), gift cards locked, a reservation given back, and the cart evaluated
    on the locked counters.
    """
    candidates = candidates_load(codes=codes, include_automatic=True, customer=customer)
    hopeful = candidates if lock_all else candidates_may_apply(candidates, cart=cart, customer=customer, now=now)
    extra_ids = set(reservation.takes.values_list("counter_id", flat=True)) if reservation is not None else set()
    locked = _counters_lock(hopeful, customer=customer, now=now, extra_ids=extra_ids)
    gift_cards_lock(candidates)  # the balances the evaluation below reads are the locked ones
    if reservation is not None:
        _give_back(reservation, status=RedemptionStatus.RELEASED)
        for counter in LimitCounter.objects.filter(pk__in=[row.pk for row in locked.counters.values()]):
            locked.counters[(counter.limit_id, counter.bucket, counter.subject)] = counter
        gift_cards_lock(candidates)  # (re-read: the reservation's holds are back on the cards)
    used = {key: counter.used for key, counter in locked.counters.items()}
    # A code's `uses` was read before the lock: a stale read is caught by the conditional UPDATE in _take.
    outcome = promotions_evaluate(cart=cart, customer=customer, codes=codes, now=now, candidates=candidates, used=used)
    return locked, outcome


def _order_link_now(redemption: Redemption, *, order_ref: str, outcome: Outcome) -> None:
    """
    A redeem whose `order_ref` is the external id of an order that has arrived already is linked to it at once (the
    order's arrival found nothing to link then); a points multiplier it carries is awarded after the commit
    (`tasks.order_multipliers_task`: the award locks the order row first, which this transaction must not take
    after its budget counters).
    """
    from apps.customers.models import Order

    order = Order.objects.filter(external_id=order_ref).only("pk").first()
    if order is None or not Redemption.objects.filter(pk=redemption.pk, order__isnull=True).update(order=order):
        return
    redemption.order = order
    if any(item.effect.multiplier for applied in outcome.applied for item in applied.incentives):
        enqueue_on_commit("apps.campaigns.tasks.order_multipliers_task", order.pk)


def _bonus_key(redemption_id: int, incentive_id: int) -> str:
    """The loyalty lot of a redemption's bonus points (`promotion:<this>`): one per incentive, a retry is a no-op."""
    return f"redemption:{redemption_id}:incentive:{incentive_id}"


def _bonus_points_award(outcome: Outcome, redemption: Redemption, *, customer: Any, now: datetime) -> None:
    """
    The bonus points of the applied incentives go to the member (enrolled if the program says so), in the
    redemption's transaction: the points limits were taken just before, so an award never outruns its limit.
    """
    awards = [
        (applied.candidate.campaign, item)
        for applied in outcome.applied
        for item in applied.incentives
        if item.effect.points > 0
    ]
    if not awards:
        return
    from apps.loyalty.choices import SourceType
    from apps.loyalty.services import member_join, membership_for, points_award, program_default

    program = program_default()
    membership = membership_for(customer, program) if program is not None and customer is not None else None
    if membership is None:
        if program is None or customer is None or not program.auto_enroll:
            raise DomainError("Bonus points go to loyalty members.", path="customer", code="not_a_member")
        membership, _ = member_join(customer=customer, program=program, at=now, cause=f"redemption:{redemption.pk}")
    for campaign, item in awards:
        assert campaign is not None
        points_award(
            membership=membership,
            points=item.effect.points,
            reason=f"{campaign.name}: bonus points",
            source_type=SourceType.PROMOTION,
            key=_bonus_key(redemption.pk, item.incentive.pk),
            cause=f"redemption:{redemption.pk}",
            at=now,
        )


def _points_source_key(item: RedemptionItem, redemption: Redemption) -> str:
    """The loyalty lot of an item's points: bonus points per redemption, a multiplier's extra points per order."""
    from apps.loyalty.choices import SourceType
    from apps.loyalty.services import order_boost_key

    if item.incentive.kind == EffectKind.POINTS_MULTIPLIER:
        ref = _multiplier_ref(item.incentive_id)
        if redemption.order_id is not None:
            return order_boost_key(redemption.order_id, ref)
        # The order was deleted since (the link is SET_NULL): the lot still names the redemption that awarded it.
        from apps.loyalty.models import PointLot

        found = (
            PointLot.objects.filter(cause=f"redemption:{redemption.pk}", source_key__endswith=f":promotion:{ref}")
            .values_list("source_key", flat=True)
            .first()
        )
        return found or ""
    return f"{SourceType.PROMOTION}:{_bonus_key(redemption.pk, item.incentive_id)}"


def _bonus_points_take_back(redemption: Redemption, *, share: Decimal | None, reason: str) -> None:
    """
    Take back the points the redemption gave — bonus points and a multiplier's extra points on the linked order —
    all of them (`share` None) or that share of the order value rolled back so far (cumulative, rounded down), and
    give each points limit's counter what the member gave back in all of the incentives it counts (an order refund
    may have taken some back already through loyalty), in this transaction: the room is free again for the next
    award. The counters are locked before the member's balance (the redeem path's order: counters, then balance).
    """
    from apps.loyalty.models import PointLot
    from apps.loyalty.services import points_award_reverse

    items = list(redemption.items.select_related("incentive").filter(points__gt=0).order_by("pk"))
    if not items:
        return
    takes = list(
        redemption.takes.select_related("counter__limit")
        .filter(counter__limit__measure=LimitMeasure.POINTS)
        .order_by("counter_id", "pk")
    )
    counters_lock(LimitCounter, [], extra_ids=[take.counter_id for take in takes])
    keys = {item.pk: _points_source_key(item, redemption) for item in items}
    for item in items:
        target = item.points if share is None else int((item.points * share).to_integral_value(rounding=ROUND_DOWN))
        points_award_reverse(source_key=keys[item.pk], reversed_target=target, reason=reason)
    reversed_by_key = dict(
        PointLot.objects.filter(source_key__in=keys.values()).values_list("source_key", "reversed_amount")
    )
    by_counter: dict[int, list[LimitTake]] = {}
    for take in takes:
        by_counter.setdefault(take.counter_id, []).append(take)
    for counter_id, counter_takes in by_counter.items():
        limit = counter_takes[0].counter.limit
        covered = sum(
            min(reversed_by_key.get(keys[item.pk], 0), item.points)
            for item in items
            if item.campaign_id == limit.campaign_id and limit.incentive_id in (None, item.incentive_id)
        )
        taken = sum((take.amount for take in counter_takes), Decimal(0))
        want = min(Decimal(covered), taken) - sum((take.returned for take in counter_takes), Decimal(0))
        for take in counter_takes:
            amount = min(want, take.amount - take.returned)
            if amount > 0:
                counter_give_back(LimitCounter, counter_id, amount)
                LimitTake.objects.filter(pk=take.pk).update(returned=F("returned") + amount)
                want -= amount


def _reward_codes_use(outcome: Outcome) -> None:
    """A redeemed loyalty reward code is used in loyalty too (refused `code_used` if it was used there meanwhile)."""
    from apps.loyalty.services import redemption_use

    for applied in outcome.applied:
        code = applied.candidate.code
        if code is not None and code.publication_ref.startswith(REWARD_REF):
            redemption_use(code=code.code, channel="promotions")


@transaction.atomic
def redemption_reserve(
    *,
    cart: Cart,
    customer: Any,
    codes: list[str],
    session: str,
    request: dict[str, Any] | list[Any] | None = None,
    ip: str | None = None,
    device: str = "",
    now: datetime | None = None,
) -> Redemption:
    """Hold the incentives (codes and budgets) for a checkout session until redeemed or the TTL passes."""
    if not session:
        raise ValidationError({"session": "A reservation needs the checkout session id."})
    existing = (
        Redemption.objects.select_for_update()
        .filter(session=session, status=RedemptionStatus.RESERVED)
        .order_by("pk")
        .first()
    )
    return _checkout(
        cart=cart,
        customer=customer,
        codes=codes,
        session=session,
        status=RedemptionStatus.RESERVED,
        reservation=existing,
        request=request or {},
        ip=ip,
        device=device,
        now=now,
    )


@transaction.atomic
def redemption_redeem(
    *,
    cart: Cart,
    customer: Any,
    codes: list[str],
    session: str = "",
    order_ref: str = "",
    request: dict[str, Any] | list[Any] | None = None,
    ip: str | None = None,
    device: str = "",
    now: datetime | None = None,
) -> Redemption:
    """Re-validate and take the budgets atomically; a reservation of the same session turns into the redemption."""
    reservation = None
    if session:
        reservation = (
            Redemption.objects.select_for_update()
            .filter(session=session, status=RedemptionStatus.RESERVED)
            .order_by("pk")
            .first()
        )
    return _checkout(
        cart=cart,
        customer=customer,
        codes=codes,
        session=session,
        status=RedemptionStatus.REDEEMED,
        reservation=reservation,
        request=request or {},
        order_ref=order_ref,
        ip=ip,
        device=device,
        now=now,
    )


@transaction.atomic
def redemption_rollback(*, redemption: Redemption, amount: Decimal | None = None, reason: str = "") -> Redemption:
    """
    Undo a redemption: whole (no `amount`) gives back every budget and code use; partial (`amount` of order
    value refunded) gives back that share of the money budgets (rounded half to even to the cent); when the
    refunds reach the order total it becomes a whole rollback.
    """
    redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
    if redemption.status != RedemptionStatus.REDEEMED:
        raise ConflictError(
            f"Redemption {redemption.pk} is {redemption.status}; only a redeemed one rolls back.",
            path="",
            code="not_redeemed",
        )
    left = redemption.order_total - redemption.rolled_back_total
    redemption.rolled_back_at = timezone.now()
    if amount is None or amount >= left:
        redemption.rolled_back_total = redemption.order_total
        _discount_give_back(redemption)
        redemption.save(update_fields=["rolled_back_total", "discount_rolled_back", "rolled_back_at"])
        _bonus_points_take_back(redemption, share=None, reason=f"Redemption {redemption.pk} rolled back")
        _give_back(redemption, status=RedemptionStatus.ROLLED_BACK, points_done=True)
        return redemption
    if amount <= 0:
        raise ValidationError({"amount": "A partial rollback gives back a positive amount."})
    share = amount / redemption.order_total
    _bonus_points_take_back(
        redemption,
        share=(redemption.rolled_back_total + amount) / redemption.order_total,
        reason=f"Redemption {redemption.pk} partly rolled back",
    )
    for take in redemption.takes.select_related("counter__limit").order_by("counter_id"):
        if take.counter.limit.measure in (
            LimitMeasure.REDEMPTIONS,
            LimitMeasure.DISTINCT_CUSTOMERS,
            LimitMeasure.POINTS,  # (settled above: what the member gave back)
        ):
            continue  # counts, not money: a partial refund gives none back
        back = min(
            (take.amount * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), take.amount - take.returned
        )
        if back > 0:
            counter_give_back(LimitCounter, take.counter_id, back)
            LimitTake.objects.filter(pk=take.pk).update(returned=F("returned") + back)
    gift_cards_give_back(redemption, share=share, reason="partial rollback")
    redemption.rolled_back_total += amount
    _discount_give_back(redemption)
    redemption.save(update_fields=["rolled_back_total", "discount_rolled_back", "rolled_back_at"])
    return redemption


def _discount_give_back(redemption: Redemption) -> None:
    """
    Record the discount the rollbacks gave back: on each item its discount x (rolled back / order total), to the cent
    (half even) — from the cumulative share, so two partial rollbacks round once, not twice — and their sum on the
    redemption. The reports subtract these (discount given, per campaign and in total).
    """
    items = list(redemption.items.order_by("pk"))
    whole = redemption.rolled_back_total >= redemption.order_total or not redemption.order_total
    for item in items:
        returned = (
            item.discount
            if whole
            else (item.discount * redemption.rolled_back_total / redemption.order_total).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_EVEN
            )
        )
        if returned != item.discount_returned:
            RedemptionItem.objects.filter(pk=item.pk).update(discount_returned=returned)
            item.discount_returned = returned
    redemption.discount_rolled_back = sum((item.discount_returned for item in items), Decimal("0.00"))


EXPIRING_NOTICE_DAYS = 3
MAX_NOTICE_DAYS = 90
ANNOUNCE_BATCH = 5000


def vouchers_expiring_announce(
    *, now: datetime | None = None, notice_days: Iterable[int] = (EXPIRING_NOTICE_DAYS,)
) -> int:
    """
    Daily: `voucher.expiring` for published, unused codes, once per notice a workflow asks for — N days before
    expiry for each N in `notice_days` (1..90; the "Voucher expiring in N days" reminders' N, collected by
    `campaigns.automation.voucher_notice_days`). A code gets the notice of the smallest N whose window it is
    in, once: with notices at 7 and 3 days, a code 6 days from expiry gets the 7-day one now and the 3-day one
    later; a code published 2 days before it expires gets only the 3-day one (never a "7 days" notice after
    the 3-day one). The payload says which notice it is (`days`, read as `voucher.notice_days`) and the whole
    days left (`days_left`, `voucher.expires_in_days`). `expiry_notice_days` on the code makes a second run a
    no-op. Returns how many notices were sent.
    """
    now = now or timezone.now()
    horizons = sorted({int(days) for days in notice_days if 1 <= int(days) <= MAX_NOTICE_DAYS})
    if not horizons:
        return 0
    rows = (
        Code.objects.filter(
            customer__isnull=False,
            is_active=True,
            uses=0,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=horizons[-1]),
        )
        .filter(Q(expiry_notice_days__isnull=True) | Q(expiry_notice_days__gt=horizons[0]))
        .select_related("customer", "campaign")
        .order_by("expires_at", "pk")[:ANNOUNCE_BATCH]
    )
    count = 0
    for code in rows:
        left = code.expires_at - now  # type: ignore[operator]  # (filtered: not null)
        due = [days for days in horizons if left <= timedelta(days=days)]
        due = [days for days in due if code.expiry_notice_days is None or days < code.expiry_notice_days]
        if not due:
            continue
        days = due[0]
        with transaction.atomic():
            marked = (
                Code.objects.filter(pk=code.pk)
                .filter(Q(expiry_notice_days__isnull=True) | Q(expiry_notice_days__gt=days))
                .update(expiry_notice_days=days, expiry_notified_at=now)
            )
            if not marked:
                continue  # another run announced it meanwhile
            domain_event_emit(
                signal=signals.voucher_expiring,
                name="voucher.expiring",
                customer=code.customer,
                payload={
                    "code": code.code,
                    "campaign": code.campaign.name,
                    "expires_at": code.expires_at.isoformat() if code.expires_at else None,
                    "days": days,
                    "days_left": max(1, math.ceil(left / timedelta(days=1))),
                },
                cause=f"voucher_expiring:{code.pk}:{days}",
                sender=Code,
                code=code,
            )
            count += 1
    return count


# --- Orders --------------------------------------------------------------------------------------------------

LINK_CODES_WINDOW = timedelta(days=2)


@transaction.atomic
def redemption_link_order(
    *, order: Any, session: str = "", codes: list[str] | tuple[str, ...] = ()
) -> list[Redemption]:
    """
    Link the redemptions an order paid for to it (ROI reads `Redemption.order`): those of the checkout
    `session`, those redeemed with `order_ref` = the order's external id, and the customer's redemptions of
    the `codes` in the two days before the order. Defaults come from the order itself (`checkout_session`,
    `discount_codes`, sent with the order through the orders API). Only redeemed or rolled-back redemptions
    not linked yet: linking twice is a no-op. Store connectors call it with the discount codes of a
    Shopify/WooCommerce order.
    """
    session = (session or order.checkout_session or "").strip()
    texts = [code_normalize(text) for text in (codes or order.discount_codes or [])][:20]
    match = Q(pk__in=[])
    if session:
        match |= Q(session=session)
    if order.external_id:
        match |= Q(order_ref=order.external_id)
    if texts:
        match |= Q(
            customer_id=order.customer_id,
            items__code__code__in=texts,
            redeemed_at__gte=order.placed_at - LINK_CODES_WINDOW,
            redeemed_at__lte=order.placed_at + LINK_CODES_WINDOW,
        )
    ids = sorted(
        set(
            Redemption.objects.filter(match)
            .filter(order__isnull=True, status__in=[RedemptionStatus.REDEEMED, RedemptionStatus.ROLLED_BACK])
            .values_list("pk", flat=True)
        )
    )
    if not ids:
        return []
    Redemption.objects.filter(pk__in=ids, order__isnull=True).update(order=order)
    order_multipliers_award(order=order)
    return list(Redemption.objects.filter(pk__in=ids, order=order).order_by("pk"))


# --- Points multipliers ---------------------------------------------------------------------------------------


def _multiplier_ref(incentive_id: int) -> str:
    """What tells a multiplier's lot apart among an order's promotion lots: one per incentive and order."""
    return f"incentive:{incentive_id}"


def _multiplier_limit_room(
    item: RedemptionItem, redemption: Redemption, *, points: int, now: datetime
) -> tuple[int, list[tuple[Limit, LimitCounter]], Limit | None]:
    """
    The campaign's points limits that count this multiplier (campaign-wide, its incentive, its code, its customer),
    their counters created if missing and locked (ascending primary key; expired reservations on them released):
    (the points that fit — reduced by `reduce` limits, 0 when a `refuse`/`pause` limit has no room —, the locked
    (limit, counter) pairs, the limit that refused or None).
    """
    limits = [
        limit
        for limit in Limit.objects.filter(campaign_id=item.campaign_id, measure=LimitMeasure.POINTS).order_by("pk")
        if limit.incentive_id in (None, item.incentive_id)
    ]
    keys: dict[tuple, Limit] = {}
    for limit in limits:
        key = budget_key(limit, code=item.code, customer=redemption.customer, now=now)
        if key is not None:
            keys[key] = limit
    if not keys:
        return points, [], None
    counters_ensure(LimitCounter, {key: limit.limit for key, limit in keys.items()})
    locked = counters_lock(LimitCounter, keys)
    _expired_release(counter_ids=[row.pk for row in locked.values()], now=now)
    fresh = {row.pk: row for row in LimitCounter.objects.filter(pk__in=[row.pk for row in locked.values()])}
    pairs = [(keys[key], fresh[locked[key].pk]) for key in sorted(keys, key=lambda key: locked[key].pk)]
    for limit, counter in pairs:
        left = int(max(counter.limit_value - counter.used, Decimal(0)))
        if points > left:
            if limit.action != LimitAction.REDUCE or left < 1:
                return 0, pairs, limit
            points = left
    return points, pairs, None


@transaction.atomic
def order_multipliers_award(*, order: Any, now: datetime | None = None) -> int:
    """
    The points multipliers of the redemptions linked to `order` (`redemption_link_order`) make its loyalty earning
    multiply: an incentive "points multiplier" of m gives the order's base points x (m - 1) more, as one loyalty lot
    `order:<id>:promotion:incentive:<id>` whose reason names the campaign — once per order and incentive, however
    many redemptions carry it or however often this runs. The lot is tied to the order, so a refund or a
    cancellation takes it back in proportion like the order's own points; a rollback of the redemption takes it back
    too (`_bonus_points_take_back`) and frees the points limits it took. Nothing is given while the global kill
    switch is on, the campaign is paused or the incentive switched off (no backlog later), nor past a points limit
    (`refuse`/`pause`; `reduce` gives what is left). Lock order: the order row, the redemptions (ascending), the
    points counters (ascending), the member's balance. Returns the points given.
    """
    from apps.customers.models import Order
    from apps.loyalty.models import PointLot
    from apps.loyalty.services import order_boost_key, order_multiplier_points, order_points_boost, program_default
    from apps.platform.kill_switch import kill_switch_is_on

    now = now or timezone.now()
    match = RedemptionItem.objects.filter(
        redemption__order_id=order.pk,
        redemption__status=RedemptionStatus.REDEEMED,
        incentive__kind=EffectKind.POINTS_MULTIPLIER,
    )
    if not match.exists():
        return 0
    list(Order.objects.select_for_update().filter(pk=order.pk).values_list("pk", flat=True))
    redemption_ids = sorted(set(match.values_list("redemption_id", flat=True)))
    redemptions = {
        row.pk: row
        for row in Redemption.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk__in=redemption_ids, status=RedemptionStatus.REDEEMED)
        .order_by("pk")
    }
    items = list(
        match.filter(redemption_id__in=redemptions)
        .select_related("incentive", "campaign", "code")
        .order_by("redemption_id", "pk")
    )
    program = program_default()
    if program is None or kill_switch_is_on():
        return 0
    given = 0
    for item in items:
        redemption, incentive, campaign = redemptions[item.redemption_id], item.incentive, item.campaign
        if redemption.customer_id != order.customer_id:
            continue  # the points go to the member who redeemed them: never to another customer's order
        ref = _multiplier_ref(incentive.pk)
        if PointLot.objects.filter(source_key=order_boost_key(order.pk, ref)).exists():
            continue  # given already (an earlier redemption of the same incentive, or a retry)
        if campaign.status == CampaignStatus.PAUSED or not incentive.is_active or not incentive.multiplier:
            continue
        extra = order_multiplier_points(order, incentive.multiplier)
        if extra <= 0:
            continue
        points, pairs, refused = _multiplier_limit_room(item, redemption, points=extra, now=now)
        if refused is not None:
            if refused.action == LimitAction.PAUSE:
                Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED)
            continue
        lot, created = order_points_boost(
            order=order,
            points=points,
            ref=ref,
            reason=f"{campaign.name}: points x{incentive.multiplier.normalize():f} on order {order}",
            at=now,
            cause=f"redemption:{redemption.pk}",
        )
        if lot is None or not created:
            continue
        takes = []
        for limit, counter in pairs:
            if not counter_take(LimitCounter, counter.pk, Decimal(points)):  # cannot happen under the lock
                raise ConflictError(
                    "The budget was used up meanwhile.", path=f"limits[{limit.pk}]", code="budget_exhausted"
                )
            takes.append(LimitTake(redemption=redemption, counter=counter, amount=Decimal(points)))
            after = counter.used + points
            _thresholds_announce(limit, before=counter.used, after=after, subject=counter.subject)
            if limit.action == LimitAction.PAUSE and after >= counter.limit_value:
                Campaign.objects.filter(pk=limit.campaign_id).update(status=CampaignStatus.PAUSED)
        LimitTake.objects.bulk_create(takes)
        RedemptionItem.objects.filter(pk=item.pk).update(points=points)
        given += points
    return given


AUTOMATIC_MULTIPLIER_WINDOW = timedelta(days=2)
MAX_ORDER_LINES = 500


def _order_cart(order: Any) -> Cart | None:
    """The order as a cart in the shop currency (None when its amounts cannot be converted)."""
    from apps.customers.models import OrderLine

    from .eligibility import CartLine

    shop = shop_currency()
    rate = None if order.currency == shop else order.exchange_rate
    if order.currency != shop and rate is None:
        return None
    lines = []
    rows = OrderLine.objects.filter(order_id=order.pk).order_by("pk")[:MAX_ORDER_LINES]
    for index, line in enumerate(rows):
        price = line.unit_price if rate is None else to_shop(line.unit_price, rate=rate)
        lines.append(
            CartLine(
                index=index, quantity=line.quantity, unit_price=price, title=line.title, product_id=line.product_id
            )
        )
    shipping = order.shipping_total if rate is None else to_shop(order.shipping_total, rate=rate)
    return Cart(currency=shop, lines=lines, shipping=shipping, channel=order.channel)


def automatic_multiplier_campaign_ids(*, exclude_order: Any = None) -> set[int]:
    """
    Active automatic campaigns whose every active incentive is a points multiplier: they can apply to an order after
    it was placed (a discount cannot), so an order that never went through redeem gets them when it arrives.
    """
    rows = Incentive.objects.filter(
        campaign__type=CampaignType.AUTOMATIC, campaign__status=CampaignStatus.ACTIVE, is_active=True
    ).values_list("campaign_id", "kind")
    kinds: dict[int, set[str]] = {}
    for campaign_id, kind in rows:
        kinds.setdefault(campaign_id, set()).add(kind)
    ids = {campaign_id for campaign_id, found in kinds.items() if found == {EffectKind.POINTS_MULTIPLIER}}
    if ids and exclude_order is not None:
        ids -= set(
            RedemptionItem.objects.filter(redemption__order_id=exclude_order.pk, campaign_id__in=ids).values_list(
                "campaign_id", flat=True
            )
        )
    return ids


@transaction.atomic
def order_automatic_multipliers(*, order: Any, now: datetime | None = None) -> Redemption | None:
    """
    An order that arrives without having redeemed them (a POS or store-connector order) gets the active automatic
    campaigns that only multiply points ("double points this weekend"): evaluated on the order as a cart at the time
    it was placed — kill switch, schedule, holdout, validation rule, membership, budgets, stacking as at a checkout —
    recorded as a redemption linked to the order (counted by the campaign's limits, shown in the redemptions log,
    rolled back like any), then awarded by `order_multipliers_award`. Campaigns a redemption linked to the order
    already carries are left out (once per order: the order row is locked first). Orders placed more than two days
    before they arrive (imported history) get nothing. Returns the redemption, or None.
    """
    from apps.customers.models import Order
    from apps.platform.kill_switch import kill_switch_is_on

    now = now or timezone.now()
    if kill_switch_is_on() or order.placed_at < now - AUTOMATIC_MULTIPLIER_WINDOW or order.customer_id is None:
        return None
    order = Order.objects.select_for_update().select_related("customer").get(pk=order.pk)
    if order.status == "cancelled":
        return None
    ids = automatic_multiplier_campaign_ids(exclude_order=order)
    cart = _order_cart(order) if ids else None
    if cart is None or not cart.lines:
        return None
    customer, at = order.customer, min(order.placed_at, now)
    candidates = [
        candidate
        for candidate in candidates_load(codes=[], include_automatic=True, customer=customer)
        if candidate.campaign is not None and candidate.campaign.pk in ids
    ]
    locked = _counters_lock(candidates, customer=customer, now=at, extra_ids=set())
    used = {key: counter.used for key, counter in locked.counters.items()}
    outcome = promotions_evaluate(cart=cart, customer=customer, codes=[], now=at, candidates=candidates, used=used)
    if not outcome.applied:
        return None
    currency = cart.currency
    redemption = Redemption.objects.create(
        customer=customer,
        status=RedemptionStatus.REDEEMED,
        currency=currency,
        order_total=cart.subtotal + cart.shipping,
        discount_total=Decimal(0),
        gift_card_total=Decimal(0),
        order_ref=order.external_id or "",
        order=order,
        request={"order_id": order.pk, "automatic_multipliers": True},
        created_at=now,
        redeemed_at=now,
    )
    _take(outcome, locked, redemption)
    RedemptionItem.objects.bulk_create(
        [
            RedemptionItem(
                redemption=redemption,
                campaign=applied.candidate.campaign,
                incentive=item.incentive,
                discount=from_minor(item.effect.total, currency),
            )
            for applied in outcome.applied
            for item in applied.incentives
        ]
    )
    order_multipliers_award(order=order, now=now)
    return redemption
