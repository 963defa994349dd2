"""
What the campaigns app offers the automation engine: the promotion triggers (`voucher.published`,
`voucher.redeemed`, `voucher.expiring`, `campaign.budget_threshold`, `campaign.codes_low`,
`promotions.kill_switch`), the action `campaigns.issue_voucher` and three gallery templates. Its condition fields
are in `fields.py` (`voucher.code`: the code an earlier step of the run issued).

This is the only module of the campaigns app that imports `apps.automations`.
"""

from decimal import Decimal
from typing import Any

from apps.automations import gallery, registry

TRIGGERS = [
    (
        "voucher.published",
        "Voucher published",
        "A promotion code was published (assigned) to the customer.",
        ("customer",),
    ),
    ("voucher.redeemed", "Voucher redeemed", "The customer redeemed promotion incentives at checkout.", ("customer",)),
    (
        "voucher.expiring",
        "Voucher expiring",
        "A code published to the customer expires within N days (1 to 90: set “Voucher expiring: days before "
        "expiry” in the trigger's condition; 3 without it).",
        ("customer",),
    ),
    (
        "campaign.budget_threshold",
        "Campaign budget threshold",
        "A campaign budget crossed 50 %, 80 % or 100 % of its limit (payload: campaign, limit, percent); no customer.",
        ("customer",),
    ),
    (
        "campaign.codes_low",
        "Campaign codes running low",
        "Fewer free codes than the campaign's alert threshold are left (payload: campaign, free, threshold); "
        "no customer.",
        ("customer",),
    ),
    (
        "form.submitted",
        "Form submitted",
        "A visitor sent a landing page's sign-up form (fields: form.name, form.fields.<field>); fires once per "
        "page and customer, before the e-mail is confirmed.",
        ("customer", "form"),
    ),
    (
        "promotions.kill_switch",
        "Promotions kill switch",
        "The global kill switch was turned on or off (payload: on, reason, user); no customer.",
        ("customer",),
    ),
]


def run_issue_voucher(context: Any, params: dict[str, Any], effect_key: str) -> dict[str, Any]:
    """Publish a free code of the named campaign to the customer; the same run step never issues twice."""
    from apps.platform.kill_switch import REFUSAL_MESSAGE, kill_switch_is_on
    from loyalty_site.lib.errors import DomainError

    from .promotions.models import Campaign
    from .promotions.services import code_publish

    customer = getattr(context, "customer", None)
    if customer is None:
        raise registry.ActionRefused("This action needs a customer.")
    if kill_switch_is_on():
        raise registry.ActionRefused(f"kill_switch: {REFUSAL_MESSAGE}")
    name = str(params.get("campaign") or "").strip()
    campaign = Campaign.objects.filter(name__iexact=name).first()
    if campaign is None:
        raise registry.ActionRefused(f"Unknown campaign {name!r}.")
    try:
        code = code_publish(campaign=campaign, customer=customer, ref=f"workflow:{effect_key}"[:120])
    except DomainError as error:
        if error.code == "held_out":
            # The campaign keeps this customer out to measure its lift: nothing issued, the step says why.
            return {"held_out": True, "campaign": campaign.name, "reason": error.message}
        raise registry.ActionRefused(error.message) from error
    return {"code": code.code, "campaign": campaign.name, "code_id": code.pk}


def _register() -> None:
    for name, label, description, scopes in TRIGGERS:
        registry.register_trigger(
            registry.TriggerSpec(name=name, label=label, description=description, scopes=scopes, group="Campaigns")
        )
    registry.register_action(
        registry.ActionSpec(
            name="campaigns.issue_voucher",
            label="Issue a voucher code",
            description="Publish a free code of a campaign to the customer (once per run step).",
            params=[registry.ParamSpec(name="campaign", type="text", label="Campaign name", required=True)],
            run=run_issue_voucher,
            group="Campaigns",
        )
    )


def _issue_then_email(trigger: str, where: dict[str, Any] | None, p: dict[str, Any]) -> dict[str, Any]:
    steps = [
        {"id": "s1", "action": "campaigns.issue_voucher", "params": {"campaign": p["campaign"]}},
        gallery.email("s2", p["subject"], p["body"]),
    ]
    return gallery.simple(gallery.definition(trigger, steps, where=where))


def _voucher_expiring(p: dict[str, Any]) -> dict[str, Any]:
    where = {"field": NOTICE_FIELD, "op": "eq", "value": str(p["days"])}
    steps = [gallery.email("s1", p["subject"], p["body"])]
    return gallery.simple(gallery.definition("voucher.expiring", steps, where=where))


NOTICE_FIELD = "voucher.notice_days"


def _notice_days_in(condition: Any, depth: int = 0) -> set[int]:
    """The N values a trigger condition asks for with `voucher.notice_days` eq/in (not under a `not`)."""
    if not isinstance(condition, dict) or depth > 20:
        return set()
    found: set[int] = set()
    for group in ("all", "any"):
        for item in condition.get(group) or []:
            found |= _notice_days_in(item, depth + 1)
    if condition.get("field") == NOTICE_FIELD and condition.get("op") in ("eq", "in"):
        values = condition.get("value")
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and value.isdigit():
                found.add(int(value))
    return found


def voucher_notice_days() -> list[int]:
    """
    The notices (N days before expiry) the active workflows on `voucher.expiring` ask for, for the daily
    notice: the N of each one's `voucher.notice_days` condition, and 3 for one without such a condition (as
    before N existed). No active workflow: [3] (the event still reaches its other listeners).
    """
    from apps.automations.choices import WorkflowStatus
    from apps.automations.models import Workflow

    from .promotions.services import EXPIRING_NOTICE_DAYS, MAX_NOTICE_DAYS

    days: set[int] = set()
    definitions = Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE, current_version__trigger="voucher.expiring"
    ).values_list("current_version__definition", flat=True)
    for definition in definitions:
        trigger = (definition or {}).get("trigger") if isinstance(definition, dict) else None
        asked = _notice_days_in((trigger or {}).get("where") if isinstance(trigger, dict) else None)
        days |= {n for n in asked if 1 <= n <= MAX_NOTICE_DAYS} or {EXPIRING_NOTICE_DAYS}
    return sorted(days) or [EXPIRING_NOTICE_DAYS]


def campaign_templates() -> dict[str, Any]:
    from .promotions.services import EXPIRING_NOTICE_DAYS, MAX_NOTICE_DAYS

    param = gallery.TemplateParam
    specs = [
        gallery.TemplateSpec(
            "campaigns_welcome_code_newsletter",
            "Welcome code for newsletter sign-ups",
            "When a customer signs up for the newsletter, issue a welcome code (give the campaign's codes a "
            "30-day expiry after publication) and e-mail it.",
            "event.custom",
            "Campaigns",
            [
                param("campaign", "Campaign", "string", "Welcome"),
                param("subject", "E-mail subject", "string", "Welcome! Here is your code"),
                param(
                    "body",
                    "E-mail text",
                    "string",
                    "Thanks for signing up: your code {{ voucher.code }} is valid for 30 days.",
                ),
            ],
            lambda p: _issue_then_email(
                "event.custom", {"field": "event.name", "op": "eq", "value": "newsletter_signup"}, p
            ),
        ),
        gallery.TemplateSpec(
            "campaigns_voucher_expiring_reminder",
            "Voucher expiring in N days",
            "E-mail customers whose unused voucher code expires within N days (the daily voucher notice sends the "
            "trigger once per code and N).",
            "voucher.expiring",
            "Reminders",
            [
                param(
                    "days",
                    "Days before expiry",
                    "days",
                    EXPIRING_NOTICE_DAYS,
                    help=f"1 to {MAX_NOTICE_DAYS}.",
                    bounds=(1, MAX_NOTICE_DAYS),
                ),
                param("subject", "E-mail subject", "string", "Your code expires soon"),
                param(
                    "body",
                    "E-mail text",
                    "string",
                    "Your code {{ voucher.code }} expires in {{ voucher.expires_in_days }} days: use it before it "
                    "is gone!",
                ),
            ],
            _voucher_expiring,
        ),
        gallery.TemplateSpec(
            "campaigns_winback_code",
            "Win-back code for inactive high-value customers",
            "Every day, customers with no order in 30 days who spent more than 500 get a win-back code.",
            "customer.bulk_activity",
            "Campaigns",
            [
                param("campaign", "Campaign", "string", "Win-back"),
                param("subject", "E-mail subject", "string", "We miss you"),
                param("body", "E-mail text", "string", "Come back: your code {{ voucher.code }} is waiting for you."),
            ],
            lambda p: {
                **_issue_then_email("customer.bulk_activity", None, p),
                "settings": {
                    "schedule_cron": "0 3 * * *",
                    "audience": gallery.inactive_high_value_audience(30, Decimal("500")),
                },
            },
        ),
    ]
    return {spec.key: spec for spec in specs}


def register() -> None:
    _register()
    for key, spec in campaign_templates().items():
        if key not in gallery.TEMPLATES:
            gallery.template_register(spec)


register()
