"""
Earning-rule write services: every way a rule is stored (admin, API, commands) validates its
conditions against the field catalog here, with their JSON paths (`conditions.op: "equals" is not an
operator…`), so a typo is refused at save instead of silently never matching.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.platform.audit import audit_record, audit_snapshot
from apps.platform.limits import LimitPeriod, limit_row_update
from loyalty_site.lib.conditions import condition_validate
from loyalty_site.lib.json_limits import json_value_error

from ..choices import RuleKind, RuleLimitScope
from ..models import EarningRule, EarningRuleCounter, EarningRuleLimit, Program, Tier

RULE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "is_active",
        "points",
        "multiplier",
        "event_name",
        "product_tag",
        "conditions",
        "starts_at",
        "ends_at",
    }
)

# What a rule's conditions may read: the customer (and loyalty figures) plus the object that earns.
ORDER_SCOPES = ("customer", "order")
EVENT_SCOPES = ("customer", "event")
# Conditions nest at most 10 levels (validation says where); refuse absurd documents before walking them.
MAX_CONDITIONS_DEPTH = 40
MAX_CONDITIONS_NODES = 2000


def earning_rule_conditions_errors(*, kind: str, conditions: Any) -> list[tuple[str, str]]:
    """Every problem in a rule's conditions as (path under `conditions`, message); empty conditions always hold."""
    if conditions is None or conditions == {}:
        return []
    limit = json_value_error(
        conditions, max_depth=MAX_CONDITIONS_DEPTH, max_nodes=MAX_CONDITIONS_NODES, path="conditions"
    )
    if limit is not None:
        return [(limit.path, f"the condition is {limit.message}")]
    scopes = EVENT_SCOPES if kind == RuleKind.FIXED_EVENT else ORDER_SCOPES
    return [(error.path, error.message) for error in condition_validate(conditions, path="conditions", scopes=scopes)]


def _conditions_check(*, kind: str, conditions: Any) -> None:
    errors: dict[str, list[str]] = {}
    for path, message in earning_rule_conditions_errors(kind=kind, conditions=conditions):
        errors.setdefault(path, []).append(message)
    if errors:
        raise ValidationError(errors)


def _fields_check(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - RULE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "Unknown earning rule field."))


@transaction.atomic
def earning_rule_create(
    *, program: Program, name: str, kind: str, tiers: Iterable[Tier] = (), **fields: Any
) -> EarningRule:
    """Create an earning rule after validating its conditions (ValidationError keyed by JSON path)."""
    _fields_check(fields)
    fields["conditions"] = fields.get("conditions") or {}
    _conditions_check(kind=kind, conditions=fields["conditions"])
    rule = EarningRule.objects.create(program=program, name=name, kind=kind, **fields)
    rule.tiers.set(list(tiers))
    audit_record(action="created", obj=rule)
    return rule


@transaction.atomic
def earning_rule_update(*, rule: EarningRule, tiers: Iterable[Tier] | None = None, **fields: Any) -> EarningRule:
    """Change an earning rule (its tiers replaced when given); invalid conditions change nothing."""
    _fields_check({key: value for key, value in fields.items() if key != "program"})
    if "conditions" in fields:
        fields["conditions"] = fields["conditions"] or {}
    _conditions_check(kind=fields.get("kind", rule.kind), conditions=fields.get("conditions", rule.conditions))
    before = audit_snapshot(EarningRule.objects.get(pk=rule.pk))  # (the admin's form already changed `rule`)
    for key, value in fields.items():
        setattr(rule, key, value)
    rule.save()
    if tiers is not None:
        rule.tiers.set(list(tiers))
    audit_record(action="updated", obj=rule, before=before)
    return rule


# --- Points limits of a rule (the platform's limit machinery counts them: services/limits.rule_limits_take) ---

LIMIT_FIELDS = frozenset({"points", "period", "scope"})
MAX_LIMITS_PER_RULE = 10


def earning_rule_limit_check(limit: EarningRuleLimit) -> None:
    """ValidationError by field when the limit does not make sense (the admin form and the API ask it too)."""
    errors: dict[str, str] = {}
    if isinstance(limit.points, bool) or not isinstance(limit.points, int) or limit.points <= 0:
        errors["points"] = "A points limit is a whole number above zero."
    if limit.period not in LimitPeriod.values:
        errors["period"] = f"One of {', '.join(LimitPeriod.values)}."
    if limit.scope not in RuleLimitScope.values:
        errors["scope"] = f"One of {', '.join(RuleLimitScope.values)}."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def earning_rule_limit_create(*, rule: EarningRule, points: int, user: Any = None, **fields: Any) -> EarningRuleLimit:
    """Add a points limit to a rule ("at most 100 points a day per customer from this rule"); audited."""
    _unknown(fields, LIMIT_FIELDS)
    EarningRule.objects.select_for_update().filter(pk=rule.pk).first()  # (serialises the count below)
    if rule.limits.count() >= MAX_LIMITS_PER_RULE:
        raise ValidationError({"rule": f"At most {MAX_LIMITS_PER_RULE} limits per rule."})
    limit = EarningRuleLimit(rule=rule, points=points, **fields)
    earning_rule_limit_check(limit)
    limit.save()
    audit_record(action="created", obj=limit, user=user)
    return limit


@transaction.atomic
def earning_rule_limit_update(*, limit: EarningRuleLimit, user: Any = None, **fields: Any) -> EarningRuleLimit:
    """
    Change a limit. Its counters follow a new number of points (a lower one never takes back what was given);
    what it counts (period, scope) cannot change once it has counted something (409: add a new limit).
    """
    _unknown(fields, LIMIT_FIELDS)
    return limit_row_update(
        limit,
        fields,
        counter_model=EarningRuleCounter,
        shape=("period", "scope"),
        check=earning_rule_limit_check,
        value=lambda row: Decimal(row.points),
        message="This limit has counted points: its period and scope cannot change; add a new limit instead.",
        path="period",
        user=user,
    )


@transaction.atomic
def earning_rule_limit_delete(*, limit: EarningRuleLimit, user: Any = None) -> None:
    """Remove a limit (its counters go with it; points given stay given); audited."""
    audit_record(action="deleted", obj=limit, before=audit_snapshot(limit), user=user)
    limit.delete()


def _unknown(fields: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "Unknown limit field."))
