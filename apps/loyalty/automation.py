"""
What the loyalty app offers the automation engine: triggers (member.joined, referral.registered,
loyalty.points_expiring, loyalty.tier_changed), actions (loyalty.award_points / deduct_points /
set_tier) and four gallery templates. Its condition fields are in `fields.py`.

This is the only module of the loyalty app that imports `apps.automations` (the engine's registries
and gallery); the engine imports it at start-up.
"""

from typing import Any

from apps.automations import gallery, registry

from .choices import SourceType
from .fields import membership_of_customer as _membership
from .models import Balance, Membership, Tier

# --- Actions ------------------------------------------------------------------------------------------


def _cause(context: Any) -> str:
    """The engine passes `cause` ("workflow_run:<id>") and `run_id` in the context's `extra`."""
    extra = getattr(context, "extra", None)
    if isinstance(extra, dict):
        if extra.get("cause"):
            return str(extra["cause"])
        if extra.get("run_id"):
            return f"workflow_run:{extra['run_id']}"
    run = getattr(context, "run", None)
    if run is not None and getattr(run, "pk", None):
        return f"workflow_run:{run.pk}"
    return "workflow"


def _refusing(run: Any) -> Any:
    """Turn a business refusal (not enough points, unknown tier) into the engine's permanent ActionRefused."""
    from loyalty_site.lib.errors import DomainError

    def wrapped(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
        try:
            return run(context, params, effect_key)
        except DomainError as error:
            raise registry.ActionRefused(error.message) from error

    wrapped.__name__ = getattr(run, "__name__", "run")
    wrapped.__doc__ = run.__doc__
    return wrapped


def _action_membership(context: Any) -> Membership:
    from loyalty_site.lib.errors import DomainError

    from .services import member_join

    customer = getattr(context, "customer", None)
    if customer is None:
        raise DomainError("This action needs a customer.", path="customer")
    membership = _membership(customer)
    if membership is None:
        membership, _ = member_join(customer=customer, cause=_cause(context))
    return membership


def _points(params: dict[str, Any]) -> int:
    from loyalty_site.lib.errors import DomainError

    try:
        points = int(params["points"])
    except (KeyError, TypeError, ValueError):
        raise DomainError("Points must be a whole number.", path="params.points") from None
    if points <= 0:
        raise DomainError("Points must be positive.", path="params.points")
    return points


def run_award_points(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
    """
    Award points as one lot keyed by the engine's effect key: a re-delivered step never awards twice. Refused
    while the global kill switch is on (an incentive action).
    """
    from apps.platform.kill_switch import REFUSAL_CODE, REFUSAL_MESSAGE, kill_switch_is_on

    from .services import points_award

    if kill_switch_is_on():
        raise registry.ActionRefused(f"{REFUSAL_CODE}: {REFUSAL_MESSAGE}")

    membership = _action_membership(context)
    lot, created = points_award(
        membership=membership,
        points=_points(params),
        reason=str(params.get("reason") or "Workflow award"),
        source_type=SourceType.WORKFLOW,
        key=effect_key,
        cause=_cause(context),
    )
    balance = Balance.objects.get(pk=membership.pk)
    return {"lot_id": lot.pk, "points": lot.amount, "created": created, "balance": balance.available}


def run_award_points_many(contexts: list[Any], params_list: list[dict[str, Any]], keys: list[str]) -> list[dict]:
    """`run_award_points` for a batch of runs: members joined and points awarded set-based, same outcomes."""
    from apps.platform.kill_switch import REFUSAL_CODE, REFUSAL_MESSAGE, kill_switch_is_on
    from loyalty_site.lib.errors import DomainError

    from .services import AwardRequest, members_join_many, points_award_many

    if kill_switch_is_on():
        raise registry.ActionRefused(f"{REFUSAL_CODE}: {REFUSAL_MESSAGE}")
    if any(getattr(context, "customer", None) is None for context in contexts):
        raise DomainError("This action needs a customer.", path="customer")
    members = members_join_many(joins=[(context.customer, _cause(context)) for context in contexts])
    awarded = points_award_many(
        awards=[
            AwardRequest(
                membership=members[context.customer.pk],
                points=_points(params),
                reason=str(params.get("reason") or "Workflow award"),
                key=key,
                cause=_cause(context),
            )
            for context, params, key in zip(contexts, params_list, keys, strict=True)
        ],
        source_type=SourceType.WORKFLOW,
    )
    return [
        {"lot_id": lot.pk, "points": lot.amount, "created": created, "balance": balance.available}
        for lot, created, balance in awarded
    ]


def run_deduct_points(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
    from .services import points_deduct

    membership = _action_membership(context)
    entry = points_deduct(
        membership=membership,
        points=_points(params),
        reason=str(params.get("reason") or "Workflow deduction"),
        key=f"workflow:{effect_key}"[:128],
        cause=_cause(context),
    )
    balance = Balance.objects.get(pk=membership.pk)
    return {"entry_id": entry.pk, "points": -entry.active_delta, "balance": balance.available}


def run_set_tier(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
    from loyalty_site.lib.errors import DomainError

    from .services import tier_set

    membership = _action_membership(context)
    name = str(params.get("tier") or "").strip()
    tier = Tier.objects.filter(program_id=membership.program_id, name__iexact=name).first()
    if tier is None:
        raise DomainError(f"Unknown tier {name!r}.", path="params.tier")
    old = membership.tier.name if membership.tier else None
    membership = tier_set(membership=membership, tier=tier, cause=_cause(context))
    return {"old_tier": old, "new_tier": tier.name}


# --- Registration -------------------------------------------------------------------------------------


TRIGGERS = [
    ("member.joined", "Joined the loyalty program", "A customer became a member of the loyalty program."),
    (
        "referral.registered",
        "Referred customer registered",
        "A customer registered with a member's referral code; the trigger's customer is the referrer.",
    ),
    (
        "loyalty.points_expiring",
        "Points expiring soon",
        "Points expire within the program's notice period (sent once per batch of points).",
    ),
    ("loyalty.tier_changed", "Tier changed", "The customer moved up or down a tier (or staff set one)."),
    (
        "loyalty.points_changed",
        "Points balance changed",
        "The customer's points moved: earned, spent, expired, adjusted, activated, held or released.",
    ),
]


def _register_triggers_and_actions() -> None:
    for name, label, description in TRIGGERS:
        registry.register_trigger(
            registry.TriggerSpec(name=name, label=label, description=description, scopes=("customer",), group="Loyalty")
        )
    points = registry.ParamSpec(name="points", type="integer", label="Points", required=True)
    reason = registry.ParamSpec(
        name="reason", type="text", label="Reason", required=True, help="Shown in the ledger", dynamic=True
    )
    registry.register_action(
        registry.ActionSpec(
            name="loyalty.award_points",
            label="Award loyalty points",
            description="Give the customer points (active at once), recorded with the workflow run as cause.",
            params=[points, reason],
            run=_refusing(run_award_points),
            run_many=run_award_points_many,
            group="Loyalty",
        )
    )
    registry.register_action(
        registry.ActionSpec(
            name="loyalty.deduct_points",
            label="Deduct loyalty points",
            description="Take points off the balance (soonest-expiring first); fails if the balance is too low.",
            params=[points, reason],
            run=_refusing(run_deduct_points),
            group="Loyalty",
        )
    )
    registry.register_action(
        registry.ActionSpec(
            name="loyalty.set_tier",
            label="Set loyalty tier",
            description="Assign a tier by name; it becomes the customer's floor.",
            params=[registry.ParamSpec(name="tier", type="text", label="Tier name", required=True)],
            run=_refusing(run_set_tier),
            group="Loyalty",
        )
    )


# --- Gallery templates --------------------------------------------------------------------------------


def _award(step_id: str, points: int, reason: str) -> dict[str, Any]:
    return {"id": step_id, "action": "loyalty.award_points", "params": {"points": points, "reason": reason}}


def _email(step_id: str, subject: str, body: str) -> dict[str, Any]:
    return gallery.email(step_id, subject, body)


def _referral_bonus(p: dict[str, Any]) -> dict[str, Any]:
    return gallery.simple(gallery.definition("referral.registered", [_award("s1", p["points"], p["reason"])]))


def _expiring(p: dict[str, Any]) -> dict[str, Any]:
    where = {"field": "loyalty.points_expiring", "window": {"days": p["days"]}, "op": "gt", "value": 0}
    steps = [_email("s1", p["subject"], p["body"])]
    return gallery.simple(gallery.definition("loyalty.points_expiring", steps, where=where))


def _after_joining(p: dict[str, Any]) -> dict[str, Any]:
    steps = [{"id": "s1", "wait": {"days": p["days"]}}, _email("s2", p["subject"], p["body"])]
    return gallery.simple(gallery.definition("member.joined", steps))


def _tier_welcome(p: dict[str, Any]) -> dict[str, Any]:
    where = {"field": "loyalty.tier", "op": "eq", "value": p["tier"]}
    steps = [_email("s1", p["subject"], p["body"]), _award("s2", p["points"], f"Welcome to {p['tier']}")]
    return gallery.simple(gallery.definition("loyalty.tier_changed", steps, where=where))


def loyalty_templates() -> dict[str, Any]:
    """The four loyalty templates as the gallery's own `TemplateSpec`s (key → spec)."""
    param = gallery.TemplateParam
    specs = [
        gallery.TemplateSpec(
            "loyalty_referral_bonus",
            "Referral bonus",
            "When a referred friend registers, give the referrer bonus points (on top of the program's own bonus).",
            "referral.registered",
            "Loyalty",
            [param("points", "Bonus points", "int", 100), param("reason", "Ledger reason", "string", "Referral bonus")],
            _referral_bonus,
        ),
        gallery.TemplateSpec(
            "loyalty_points_expiring_reminder",
            "Points-expiring reminder",
            "E-mail customers whose points expire within N days (the program's notice period sends the trigger).",
            "loyalty.points_expiring",
            "Loyalty",
            [
                param("days", "Days before expiry", "days", 3),
                param("subject", "E-mail subject", "string", "Your points expire soon"),
                param(
                    "body",
                    "E-mail text",
                    "string",
                    "You have {{ loyalty.points_expiring }} points expiring soon. Your balance: {{ loyalty.balance }}.",
                ),
            ],
            _expiring,
        ),
        gallery.TemplateSpec(
            "loyalty_days_after_joining",
            "Follow-up N days after joining",
            "N days after a customer joins the program, send them a message about their balance and rewards.",
            "member.joined",
            "Loyalty",
            [
                param("days", "Days after joining", "days", 5),
                param("subject", "E-mail subject", "string", "How do you like the club?"),
                param("body", "E-mail text", "string", "You have {{ loyalty.balance }} points. See what they buy!"),
            ],
            _after_joining,
        ),
        gallery.TemplateSpec(
            "loyalty_tier_welcome",
            "Tier welcome",
            "When a customer reaches a tier, welcome them and give a bonus.",
            "loyalty.tier_changed",
            "Loyalty",
            [
                param("tier", "Tier", "string", "Gold"),
                param("points", "Welcome bonus points", "int", 200),
                param("subject", "E-mail subject", "string", "Welcome to {{ loyalty.tier }}"),
                param("body", "E-mail text", "string", "You are now {{ loyalty.tier }}. Enjoy your new rewards."),
            ],
            _tier_welcome,
        ),
    ]
    return {spec.key: spec for spec in specs}


def templates_register() -> list[str]:
    """Add the loyalty templates to the gallery (idempotent). Returns the keys added."""
    added = []
    for key, spec in loyalty_templates().items():
        if key in gallery.TEMPLATES:
            continue
        gallery.template_register(spec)
        added.append(key)
    return added


TEMPLATE_KEYS = [
    "loyalty_referral_bonus",
    "loyalty_points_expiring_reminder",
    "loyalty_days_after_joining",
    "loyalty_tier_welcome",
]


def register() -> None:
    _register_triggers_and_actions()
    templates_register()


register()
