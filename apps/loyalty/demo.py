"""Demo data for `manage.py load_demo`: a program skeleton (tiers, earning rules, rewards). Idempotent."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

from django.db import transaction

from loyalty_site.lib.money import shop_currency

from .models import EarningRule, Program, Reward, Tier
from .services import earning_rule_create, earning_rule_limit_create

TIERS = [
    ("Bronze", 1, "0", "1", None),
    ("Silver", 2, "500", "1.25", None),
    ("Gold", 3, "1500", "1.5", 730),
]

RULES: list[dict[str, Any]] = [
    {
        "name": "Newsletter signup",
        "kind": "fixed_event",
        "event_name": "newsletter_signup",
        "points": "50",
        "limits": [{"points": 50, "period": "month", "scope": "customer"}],
    },
    {
        "name": "Review posted",
        "kind": "fixed_event",
        "event_name": "review_posted",
        "points": "20",
        "limits": [{"points": 60, "period": "week", "scope": "customer"}],
    },
    {
        "name": "Social like",
        "kind": "fixed_event",
        "event_name": "social_like",
        "points": "2",
        "limits": [{"points": 10, "period": "day", "scope": "customer"}],
    },
    {
        "name": "Birthday",
        "kind": "fixed_event",
        "event_name": "birthday",
        "points": "100",
        "limits": [{"points": 100, "period": "month", "scope": "customer"}],
    },
    {"name": "Kids & Baby x2", "kind": "product_tag_multiplier", "product_tag": "Kids & Baby", "multiplier": "2"},
    {
        "name": "Double points on Mondays for Germany",
        "kind": "time_bonus",
        "multiplier": "2",
        "conditions": {
            "all": [
                {"field": "customer.country", "op": "eq", "value": "DE"},
                {"field": "loyalty.weekday", "op": "eq", "value": 1},
            ]
        },
    },
    {
        "name": "Christmas triple points",
        "kind": "time_bonus",
        "multiplier": "3",
        "starts_at": datetime(2026, 12, 20, tzinfo=UTC),
        "ends_at": datetime(2026, 12, 27, tzinfo=UTC),
        "limits": [{"points": 500_000, "period": "total", "scope": "rule"}],
    },
]

REWARDS: list[dict[str, Any]] = [
    {"name": "5 off your next order", "kind": "fixed_discount", "value": "5", "points_cost": 500},
    {"name": "10% off", "kind": "percentage_discount", "value": "10", "points_cost": 900},
    {"name": "Free shipping", "kind": "free_shipping", "points_cost": 300},
    {"name": "25 gift card", "kind": "gift_card", "value": "25", "points_cost": 2500},
    {"name": "Tote bag", "kind": "material_prize", "points_cost": 1200, "stock": 100, "per_customer_limit": 1},
    {"name": "Gold lounge coffee", "kind": "free_product", "points_cost": 200, "tiers": ["Gold"]},
]


@transaction.atomic
def load(*, stdout: TextIO) -> None:
    program, created = Program.objects.get_or_create(
        slug="rewards-club",
        defaults={
            "name": "Rewards Club",
            "currency": shop_currency(),
            "points_per_unit": Decimal("1"),
            "pending_days": 14,
            "expiry_policy": "days_after_activation",
            "expiry_days": 365,
            "expiry_notice_days": 3,
            "return_policy": "from_balance",
            "tier_basis": "points_earned",
            "tier_window": "calendar_year",
            "tier_downgrade": "period_end",
            "referrer_bonus": 200,
            "referee_bonus": 100,
            "referral_cap": 20,
        },
    )
    tiers = {}
    for name, rank, threshold, multiplier, expiry in TIERS:
        tiers[name], _ = Tier.objects.get_or_create(
            program=program,
            name=name,
            defaults={
                "rank": rank,
                "threshold": Decimal(threshold),
                "multiplier": Decimal(multiplier),
                "expiry_days_override": expiry,
            },
        )
    for spec in RULES:
        spec = dict(spec)
        name, limits = spec.pop("name"), spec.pop("limits", [])
        if not EarningRule.objects.filter(program=program, name=name).exists():
            rule = earning_rule_create(program=program, name=name, **spec)  # conditions validated like any rule
            for limit in limits:  # points limits ("at most 10 points a day per customer from likes")
                earning_rule_limit_create(rule=rule, **limit)
    for spec in REWARDS:
        spec = dict(spec)
        tier_names = spec.pop("tiers", [])
        reward, made = Reward.objects.get_or_create(program=program, name=spec.pop("name"), defaults=spec)
        if made and tier_names:
            reward.tiers.set([tiers[name] for name in tier_names])
    verb = "Created" if created else "Kept"
    stdout.write(
        f"loyalty: {verb} program {program.name} ({len(TIERS)} tiers, {len(RULES)} rules, {len(REWARDS)} rewards)\n"
    )
