"""
Fraud rules and review: rules saved with their condition validated (errors with JSON paths), one outbox event
evaluated against the enabled rules of its trigger (actions taken, a review case opened with the evidence),
and the review's approve / reject, audited.
"""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.customers.choices import CustomerStatus
from apps.customers.models import Customer, DomainEvent, Order
from apps.customers.services import customer_status_set
from apps.loyalty import services as loyalty
from apps.loyalty.choices import HoldStatus
from apps.loyalty.models import PointHold, Referral
from apps.platform.audit import audit_record, audit_snapshot
from loyalty_site.lib.conditions import MAX_DEPTH, MAX_NODES, EvaluationContext, condition_evaluate, condition_validate
from loyalty_site.lib.conditions.catalog import _json_safe
from loyalty_site.lib.errors import ConflictError
from loyalty_site.lib.json_limits import json_value_error

from ..promotions import services as promotions
from ..promotions.models import Redemption as PromotionRedemption
from .choices import FraudAction, FraudCaseStatus, FraudTrigger
from .models import FraudCase, FraudRule

# What a rule's condition may read for each trigger (the fraud scope holds the velocity fields).
TRIGGER_SCOPES: dict[str, tuple[str, ...]] = {
    FraudTrigger.CUSTOMER_REGISTERED: ("customer", "fraud"),
    FraudTrigger.ORDER_CREATED: ("customer", "fraud", "order"),
    FraudTrigger.REFERRAL_REGISTERED: ("customer", "fraud", "referral"),
    FraudTrigger.VOUCHER_REDEEMED: ("customer", "fraud"),
    FraudTrigger.MEMBER_JOINED: ("customer", "fraud"),
}
RULE_FIELDS = (
    "name",
    "description",
    "is_enabled",
    "trigger",
    "condition",
    "action",
    "fire_kill_switch",
    "pause_campaign",
)


def fraud_rule_errors(*, trigger: str, condition: Any, action: str) -> dict[str, str]:
    """Every problem of a rule's trigger, condition and action, keyed by path (`condition.all[1].op`)."""
    errors: dict[str, str] = {}
    if trigger not in TRIGGER_SCOPES:
        errors["trigger"] = f"{trigger!r} is not a fraud trigger; use one of {', '.join(TRIGGER_SCOPES)}."
        return errors
    if action not in FraudAction.values:
        errors["action"] = f"{action!r} is not an action; use one of {', '.join(FraudAction.values)}."
    if action == FraudAction.REFUSE_REFERRAL and trigger != FraudTrigger.REFERRAL_REGISTERED:
        errors["action"] = "Only a rule on referral.registered can refuse the referral."
    limit = json_value_error(condition, max_depth=MAX_DEPTH + 2, max_nodes=MAX_NODES * 4, path="condition")
    if limit is not None:
        errors[limit.path or "condition"] = limit.message
        return errors
    if not isinstance(condition, dict) or not condition:
        errors["condition"] = "A fraud rule needs a condition (a JSON object)."
        return errors
    for error in condition_validate(condition, path="condition", scopes=TRIGGER_SCOPES[trigger]):
        errors.setdefault(error.path or "condition", error.message)
    return errors


@transaction.atomic
def fraud_rule_save(*, rule: FraudRule | None = None, user: Any = None, **fields: Any) -> FraudRule:
    """Create or change a fraud rule; the condition is validated against the trigger's fields (paths in errors)."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown fraud rule field."))
    creating = rule is None
    rule = rule or FraudRule()
    before = None if creating else audit_snapshot(FraudRule.objects.get(pk=rule.pk))
    for name, value in fields.items():
        setattr(rule, name, value)
    errors = fraud_rule_errors(trigger=rule.trigger, condition=rule.condition, action=rule.action)
    if errors:
        raise ValidationError(errors)
    rule.full_clean(validate_unique=False)
    rule.save()
    audit_record(action="created" if creating else "changed", obj=rule, before=before, user=user)
    return rule


def _context_for(event: DomainEvent, customer: Customer) -> tuple[EvaluationContext, Referral | None]:
    payload = event.payload or {}
    referral = None
    order = None
    if event.name == FraudTrigger.REFERRAL_REGISTERED and payload.get("referral_id"):
        referral = Referral.objects.filter(pk=payload["referral_id"]).first()
    if event.name == FraudTrigger.ORDER_CREATED and payload.get("order_id"):
        order = Order.objects.filter(pk=payload["order_id"]).first()
    redemption = None
    if event.name == FraudTrigger.VOUCHER_REDEEMED and payload.get("redemption_id"):
        redemption = PromotionRedemption.objects.filter(pk=payload["redemption_id"]).first()
    context = EvaluationContext(
        customer=customer, now=event.created_at, order=order, extra={"referral": referral, "redemption": redemption}
    )
    return context, referral


def fraud_evidence(condition: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """
    The values the rule read, one row per leaf it evaluated: path, field, window, operator, the rule's value and
    the customer's figure (`fraud.referrals` in the last 1 hour ≥ 5: 7). Iterative (the condition is validated).
    """
    rows: list[dict[str, Any]] = []
    stack: list[tuple[Any, str]] = [(condition, "")]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        if "field" in node:
            key = path or node["field"]
            if key in values:
                rows.append(
                    {
                        "path": path,
                        "field": node["field"],
                        "window": node.get("window"),
                        "op": node.get("op"),
                        "expected": node.get("value"),
                        "value": values[key],
                    }
                )
            continue
        for group in ("all", "any"):
            for index, child in reversed(list(enumerate(node.get(group) or []))):
                stack.append((child, f"{path}.{group}[{index}]" if path else f"{group}[{index}]"))
        if "not" in node:
            stack.append((node["not"], f"{path}.not" if path else "not"))
    return _json_safe(rows)


def _hold_prefix(event: DomainEvent) -> str:
    """The points a "hold" takes for this event: the order's or the referral's lots (all new points otherwise)."""
    payload = event.payload or {}
    if event.name == FraudTrigger.ORDER_CREATED and payload.get("order_id"):
        return f"order:{payload['order_id']}:"
    if event.name == FraudTrigger.REFERRAL_REGISTERED and payload.get("referral_id"):
        return f"referral:{payload['referral_id']}:"
    return ""


def fraud_event_evaluate(*, event: DomainEvent) -> list[FraudCase]:
    """
    Evaluate the enabled rules of the event's trigger for its customer; each match takes the rule's action and
    opens one case (the rule and event pair is unique, so a re-delivered event does nothing twice).
    """
    customer = Customer.objects.filter(pk=event.customer_id).first() if event.customer_id else None
    if customer is None:
        return []
    cases = []
    rules = FraudRule.objects.filter(trigger=event.name, is_enabled=True).select_related("pause_campaign")
    done = set(FraudCase.objects.filter(event_id=event.pk).values_list("rule_id", flat=True))
    context, referral = _context_for(event, customer)
    for rule in rules.order_by("pk"):
        if rule.pk in done:
            continue
        evaluation = condition_evaluate(rule.condition, context)
        if not evaluation.result:
            continue
        evidence = fraud_evidence(rule.condition, evaluation.values)
        case = _case_open(rule=rule, event=event, customer=customer, referral=referral, evidence=evidence)
        if case is not None:
            cases.append(case)
    return cases


@transaction.atomic
def _case_open(
    *, rule: FraudRule, event: DomainEvent, customer: Customer, referral: Referral | None, evidence: list[Any]
) -> FraudCase | None:
    try:
        with transaction.atomic():
            case = FraudCase.objects.create(
                rule=rule,
                rule_name=rule.name,
                customer=customer,
                event_id=event.pk,
                trigger=event.name,
                action=rule.action,
                evidence=evidence,
                referral=referral,
            )
    except IntegrityError:
        return None  # the same event evaluated twice
    reason = f"Fraud rule “{rule.name}” (case #{case.pk})"
    cause = f"fraud_rule:{rule.pk}"
    if rule.action in (FraudAction.FLAG, FraudAction.BLOCK) and customer.status != CustomerStatus.BLOCKED:
        status = CustomerStatus.FLAGGED if rule.action == FraudAction.FLAG else CustomerStatus.BLOCKED
        customer_status_set(customer=customer, status=status, reason=reason, cause=cause)
    elif rule.action == FraudAction.HOLD_POINTS:
        membership = loyalty.membership_for(customer)
        if membership is not None:
            case.hold = loyalty.points_hold(
                membership=membership, source_prefix=_hold_prefix(event), reason=reason, cause=cause
            )
    elif rule.action == FraudAction.REFUSE_REFERRAL and referral is not None:
        loyalty.referral_refuse(referral=referral, reason=reason, cause=cause)
    if rule.fire_kill_switch:
        promotions.kill_switch_set(on=True, reason=reason, actor=cause)
    if rule.pause_campaign is not None:
        promotions.campaign_switch(campaign=rule.pause_campaign, on=False, reason=reason, actor=cause)
    case.save(update_fields=["hold"])
    FraudRule.objects.filter(pk=rule.pk).update(matched_count=F("matched_count") + 1, last_matched_at=timezone.now())
    return case


def _customer_hold(customer: Customer) -> PointHold | None:
    """The open hold of a flagged customer's new points (source prefix "")."""
    return PointHold.objects.filter(membership__customer=customer, source_prefix="", status=HoldStatus.OPEN).first()


def _case_lock(case: FraudCase) -> FraudCase:
    case = FraudCase.objects.select_for_update(of=("self",)).select_related("customer", "hold").get(pk=case.pk)
    if case.status != FraudCaseStatus.OPEN:
        raise ConflictError(f"This case was already {case.status}.", path="case", code="case_closed")
    return case


def _case_close(case: FraudCase, *, status: str, user: Any, note: str, at: datetime) -> FraudCase:
    before = audit_snapshot(case, fields=["status", "note"])
    case.status = status
    case.note = note.strip()[:255]
    case.resolved_at = at
    case.resolved_by = user if getattr(user, "is_authenticated", False) else None
    case.save(update_fields=["status", "note", "resolved_at", "resolved_by"])
    audit_record(action=status, obj=case, before=before, user=user)
    return case


@transaction.atomic
def fraud_case_approve(*, case: FraudCase, user: Any = None, note: str = "", at: datetime | None = None) -> FraudCase:
    """Not fraud: held points activate, and a customer this case flagged or blocked is active again."""
    at = at or timezone.now()
    case = _case_lock(case)
    customer = case.customer
    if case.hold is not None:
        loyalty.points_hold_release(hold=case.hold, user=user, at=at)
    if case.action in (FraudAction.FLAG, FraudAction.BLOCK):
        hold = _customer_hold(customer)
        if hold is not None:
            loyalty.points_hold_release(hold=hold, user=user, at=at)
        if customer.status != CustomerStatus.ACTIVE and f"(case #{case.pk})" in customer.status_reason:
            customer_status_set(
                customer=customer,
                status=CustomerStatus.ACTIVE,
                reason=f"Cleared after review of case #{case.pk}",
                user=user,
                cause=f"fraud_case:{case.pk}",
            )
    return _case_close(case, status=FraudCaseStatus.APPROVED, user=user, note=note, at=at)


@transaction.atomic
def fraud_case_reject(*, case: FraudCase, user: Any = None, note: str = "", at: datetime | None = None) -> FraudCase:
    """Fraud confirmed: the points held for this case (or the flagged customer's held points) are reversed."""
    at = at or timezone.now()
    case = _case_lock(case)
    if case.hold is not None:
        loyalty.points_hold_reject(hold=case.hold, user=user, at=at)
    if case.action in (FraudAction.FLAG, FraudAction.BLOCK):
        hold = _customer_hold(case.customer)
        if hold is not None:
            loyalty.points_hold_reject(hold=hold, user=user, at=at)
    return _case_close(case, status=FraudCaseStatus.REJECTED, user=user, note=note, at=at)


@transaction.atomic
def fraud_builtin_install() -> int:
    """Create the built-in checks that are missing (disabled, ready to enable). Returns how many were created."""
    from .builtin import BUILTIN_RULES

    have = set(FraudRule.objects.exclude(builtin_key=None).values_list("builtin_key", flat=True))
    created = 0
    for spec in BUILTIN_RULES:
        if spec["builtin_key"] in have or FraudRule.objects.filter(name=spec["name"]).exists():
            continue
        fields = {key: value for key, value in spec.items() if key != "builtin_key"}
        rule = fraud_rule_save(is_enabled=False, **fields)
        FraudRule.objects.filter(pk=rule.pk).update(builtin_key=spec["builtin_key"])
        created += 1
    return created
