"""
The template gallery: ready-made, parameterised workflows (the 16 "add customer tag" templates of the seed
plus reminders: planned visit, near a store, birthday; other apps add theirs from their `automation.py`).
Reminders e-mail through messaging's `notify.email` as marketing (consent, suppressions, frequency caps and
quiet hours apply; a blocked message is a suppressed Delivery row with its reason). Installing a template
builds an ordinary draft workflow through `workflow_create` (activated at once on request); the workflow
remembers the template key it came from (`Workflow.template`), so runs can be filtered by template.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.tagging.services import MAX_TAG_LENGTH

from .definitions import STATE_TRIGGER

ParamValue = Any
Definition = dict[str, Any]


@dataclass(frozen=True)
class TemplateParam:
    """One editable value of a template: a tag name, a threshold, a window, a list of words..."""

    name: str
    label: str
    type: str  # tag | tags | money | int | days | string | strings | cron | currency
    default: ParamValue
    help: str = ""
    # For int / days: the allowed range (inclusive), narrower than the type's own (days: 1..365).
    bounds: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        default = str(self.default) if isinstance(self.default, Decimal) else self.default
        described = {"name": self.name, "label": self.label, "type": self.type, "default": default, "help": self.help}
        if self.bounds is not None:
            described.update(min=self.bounds[0], max=self.bounds[1])
        return described


@dataclass(frozen=True)
class TemplateSpec:
    """A gallery entry: what it does, which trigger it listens to, its params and how to build it."""

    key: str
    name: str
    description: str
    trigger: str
    category: str
    params: list[TemplateParam]
    builder: Callable[[dict[str, ParamValue]], dict[str, Any]] = field(repr=False)

    def defaults(self) -> dict[str, ParamValue]:
        return {param.name: param.default for param in self.params}

    def clean_params(self, raw: dict[str, Any] | None) -> dict[str, ParamValue]:
        """Defaults overlaid with `raw`, each value coerced to its type; errors name `params.<name>`."""
        raw = dict(raw or {})
        errors: dict[str, str] = {}
        known = {param.name for param in self.params}
        for name in raw:
            if name not in known:
                errors[f"params.{name}"] = f"Unknown parameter; this template takes: {', '.join(sorted(known))}."
        clean: dict[str, ParamValue] = {}
        for param in self.params:
            value = raw.get(param.name, param.default)
            try:
                clean[param.name] = _coerce(param, value)
            except ValueError as error:
                errors[f"params.{param.name}"] = str(error)
        if errors:
            raise ValidationError(errors)
        return clean

    def build(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """{"definition": {...}, "settings": {...}} for the cleaned params."""
        return self.builder(self.clean_params(params))

    @property
    def kind(self) -> str:
        """`state` (a state tag, kept true as customers change), `bulk` (scheduled) or `event`."""
        if self.trigger == STATE_TRIGGER:
            return "state"
        return "bulk" if self.trigger == "customer.bulk_activity" else "event"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "trigger": self.trigger,
            "kind": self.kind,
            "category": self.category,
            "params": [param.as_dict() for param in self.params],
        }


def _coerce(param: TemplateParam, value: Any) -> ParamValue:
    kind = param.type
    if kind in {"tag", "string", "cron", "currency"}:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("Enter a non-empty text.")
        value = " ".join(value.split())
        if kind == "tag" and len(value) > MAX_TAG_LENGTH:
            raise ValueError(f"A tag name has at most {MAX_TAG_LENGTH} characters.")
        if kind == "currency":
            if len(value) != 3 or not value.isalpha():
                raise ValueError("Enter a three-letter ISO 4217 currency code.")
            value = value.upper()
        if kind == "cron":
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError("Enter a valid cron expression, e.g. '0 3 * * *'.")
        return value
    if kind in {"tags", "strings"}:
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("Enter a non-empty list.")
        items = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise ValueError("Every item must be a non-empty text.")
            item = " ".join(item.split())
            if kind == "tags" and len(item) > MAX_TAG_LENGTH:
                raise ValueError(f"A tag name has at most {MAX_TAG_LENGTH} characters.")
            items.append(item)
        return items
    if kind == "money":
        if isinstance(value, bool):
            raise ValueError("Enter an amount.")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ValueError("Enter an amount.") from None
        if not amount.is_finite() or amount < 0:
            raise ValueError("Enter an amount of 0 or more.")
        return amount.quantize(Decimal("0.01"))
    if kind in {"int", "days"}:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("Enter a whole number.")
        try:
            number = int(value)
        except ValueError:
            raise ValueError("Enter a whole number.") from None
        low, high = param.bounds or ((1, 365) if kind == "days" else (1, 1_000_000))
        if not low <= number <= high:
            raise ValueError(f"Enter a number between {low} and {high}.")
        return number
    raise ValueError(f"Unsupported parameter type {kind!r}.")  # pragma: no cover - a programming error


# --- Building blocks ---------------------------------------------------------------------------------


def add_tags(step_id: str, tags: list[str]) -> dict[str, Any]:
    return {"id": step_id, "action": "customer.add_tags", "params": {"tags": list(tags)}}


def remove_tags(step_id: str, tags: list[str]) -> dict[str, Any]:
    return {"id": step_id, "action": "customer.remove_tags", "params": {"tags": list(tags)}}


def email(step_id: str, subject: str, body: str) -> dict[str, Any]:
    """A marketing e-mail step (messaging's `notify.email`): consent, suppressions, caps and quiet hours apply."""
    return {
        "id": step_id,
        "action": "notify.email",
        "params": {"subject": subject, "body": body, "purpose": "marketing"},
    }


def money(value: Decimal) -> int | float:
    # The condition language takes JSON numbers; a two-decimal float reads back exactly via str().
    return int(value) if value == value.to_integral_value() else float(value)


def definition(trigger: str, steps: list[dict[str, Any]], where: dict[str, Any] | None = None) -> Definition:
    trigger_block: dict[str, Any] = {"event": trigger}
    if where is not None:
        trigger_block["where"] = where
    return {"schema": 1, "trigger": trigger_block, "steps": steps}


def simple(definition_: Definition, **settings: Any) -> dict[str, Any]:
    return {"definition": definition_, "settings": settings}


def state_tag(
    condition: dict[str, Any], tag: str, *, group: str = "", rank: int = 0, entered: list | None = None
) -> Definition:
    """A state tag: customers matching `condition` carry `tag` (one per `group`, the highest rank winning)."""
    block: dict[str, Any] = {"tag": tag}
    if group:
        block.update(group=group, rank=rank)
    return {
        "schema": 1,
        "trigger": {"event": STATE_TRIGGER, "where": condition},
        "state": block,
        "steps": list(entered or []),
        "left": [],
    }


def tag_param(default: str, label: str = "Tag") -> TemplateParam:
    return TemplateParam("tag", label, "tag", default)


# --- The templates -----------------------------------------------------------------------------------

TEMPLATES: dict[str, TemplateSpec] = {}


def template(
    key: str, name: str, description: str, trigger: str, category: str, params: list[TemplateParam]
) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]], Callable[[dict[str, Any]], dict[str, Any]]]:
    def register(builder: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        if key in TEMPLATES:
            raise ValueError(f"Template {key!r} is declared twice.")
        TEMPLATES[key] = TemplateSpec(key, name, description, trigger, category, params, builder)
        return builder

    return register


@template(
    "unsubscribed",
    "Tag unsubscribed customers",
    "When a customer unsubscribes, tag them [Unsubscribed] to follow retention campaigns.",
    "customer.unsubscribed",
    "Lifecycle",
    [tag_param("Unsubscribed")],
)
def _unsubscribed(p: dict[str, Any]) -> dict[str, Any]:
    return simple(definition("customer.unsubscribed", [add_tags("s1", [p["tag"]])]))


@template(
    "offline_customer",
    "Tag offline customers",
    "Customers who buy through a retail / point-of-sale channel get [Offline customer].",
    "order.created",
    "Orders",
    [tag_param("Offline customer"), TemplateParam("channel", "Channel", "string", "pos", "online or pos")],
)
def _offline(p: dict[str, Any]) -> dict[str, Any]:
    where = {"field": "order.channel", "op": "eq", "value": p["channel"]}
    return simple(definition("order.created", [add_tags("s1", [p["tag"]])], where=where))


@template(
    "refunded_customer",
    "Tag refunded customers",
    "When an order is refunded, tag the customer [Refunded customer] to follow risk.",
    "order.refunded",
    "Orders",
    [tag_param("Refunded customer")],
)
def _refunded(p: dict[str, Any]) -> dict[str, Any]:
    return simple(definition("order.refunded", [add_tags("s1", [p["tag"]])]))


@template(
    "registered",
    "Tag registered customers",
    "Tag customers on registration to tell members from visitors.",
    "customer.registered",
    "Lifecycle",
    [tag_param("Registered")],
)
def _registered(p: dict[str, Any]) -> dict[str, Any]:
    return simple(definition("customer.registered", [add_tags("s1", [p["tag"]])]))


@template(
    "product_tag_sync",
    "Sync product tags to customer tags",
    "When a customer buys a product carrying one of these tags, the customer gets the same tag.",
    "order.created",
    "Products",
    [TemplateParam("product_tags", "Product tags to copy", "tags", ["Kids & Baby", "Electronics"])],
)
def _product_tag_sync(p: dict[str, Any]) -> dict[str, Any]:
    steps = []
    for index, tag in enumerate(p["product_tags"], start=1):
        bought = {
            "field": "order.lines",
            "op": "any",
            "where": {"field": "line.product.tags", "op": "contains", "value": tag},
        }
        steps.append({"id": f"s{index}", "if": bought, "then": [add_tags(f"s{index}a", [tag])], "else": []})
    return simple(definition("order.created", steps))


def inactive_high_value_audience(days: int, spend: Decimal) -> dict[str, Any]:
    return {
        "all": [
            {"field": "customer.last_order_at", "op": "lt", "value": {"days_ago": days}},
            {"field": "customer.total_spent", "op": "gte", "value": money(spend)},
        ]
    }


@template(
    "inactive_high_value",
    "Tag inactive high-value customers",
    "State tag: customers with no order in the last 30 days who spent at least 500 in total (shop currency) "
    "carry it; an order takes it off at once, and it comes on as the 30 days pass.",
    STATE_TRIGGER,
    "Value",
    [
        tag_param("Inactive high-value customer"),
        TemplateParam("days", "No order for (days)", "days", 30),
        TemplateParam("min_spent", "Total spent at least", "money", Decimal("500")),
    ],
)
def _inactive_high_value(p: dict[str, Any]) -> dict[str, Any]:
    return simple(state_tag(inactive_high_value_audience(p["days"], p["min_spent"]), p["tag"]))


@template(
    "currency",
    "Tag by preferred currency",
    "State tag: the customer carries one tag for the currency they pay in most, e.g. [Pays in EUR] (most "
    "orders by count, ties: the most recent order); it follows the preferred currency as orders arrive, are "
    "cancelled or refunded.",
    STATE_TRIGGER,
    "Orders",
    [
        TemplateParam(
            "tag_template",
            "Tag (with {{ customer.preferred_currency }})",
            "tag",
            "Pays in {{ customer.preferred_currency }}",
        )
    ],
)
def _currency(p: dict[str, Any]) -> dict[str, Any]:
    if "{{ customer.preferred_currency }}" not in p["tag_template"]:
        raise ValidationError({"params.tag_template": "Put {{ customer.preferred_currency }} in the tag."})
    condition = {"field": "customer.preferred_currency", "op": "is_set"}
    return simple(state_tag(condition, p["tag_template"]))


@template(
    "active_high_value",
    "Tag active high-value customers",
    "State tag: at least 3 orders and 800 spent (shop currency) in the last 30 days; on as an order crosses "
    "the line, off after a cancellation, a refund or as the window slides past the orders.",
    STATE_TRIGGER,
    "Value",
    [
        tag_param("Active high-value customer"),
        TemplateParam("min_orders", "Orders at least", "int", 3),
        TemplateParam("min_spent", "Spent at least", "money", Decimal("800")),
        TemplateParam("days", "Within (days)", "days", 30),
    ],
)
def _active_high_value(p: dict[str, Any]) -> dict[str, Any]:
    window = {"days": p["days"]}
    condition = {
        "all": [
            {"field": "customer.orders_count", "window": window, "op": "gte", "value": p["min_orders"]},
            {"field": "customer.total_spent", "window": window, "op": "gte", "value": money(p["min_spent"])},
        ]
    }
    return simple(state_tag(condition, p["tag"]))


@template(
    "country",
    "Tag by shipping country",
    "Each order tags the customer with its shipping country, e.g. [Ships to DE].",
    "order.created",
    "Orders",
    [
        TemplateParam(
            "tag_template", "Tag (with {{ order.shipping_country }})", "tag", "Ships to {{ order.shipping_country }}"
        )
    ],
)
def _country(p: dict[str, Any]) -> dict[str, Any]:
    where = {"field": "order.shipping_country", "op": "is_set"}
    return simple(definition("order.created", [add_tags("s1", [p["tag_template"]])], where=where))


@template(
    "gender_keywords",
    "Tag by gender keywords in purchases",
    'Buying a product whose name contains "women", "female", "ladies" or "her" (whole words) tags [female].',
    "order.created",
    "Products",
    [tag_param("female"), TemplateParam("words", "Whole words", "strings", ["women", "female", "ladies", "her"])],
)
def _gender_keywords(p: dict[str, Any]) -> dict[str, Any]:
    where = {
        "field": "order.lines",
        "op": "any",
        "where": {"field": "line.title", "op": "contains_words_any", "value": p["words"]},
    }
    return simple(definition("order.created", [add_tags("s1", [p["tag"]])], where=where))


@template(
    "spend_tiers",
    "Spend tiers",
    "State tags in one exclusive group: [High value] / [Mid value] / [Low value] by total spend (buyers only); "
    "a customer carries exactly one tier tag, switched on the order, refund or cancellation that crosses a "
    "threshold. Installs one state tag per tier.",
    STATE_TRIGGER,
    "Value",
    [
        TemplateParam("high_tag", "High tier tag", "tag", "High value"),
        TemplateParam("high_min", "High tier from", "money", Decimal("1000")),
        TemplateParam("mid_tag", "Mid tier tag", "tag", "Mid value"),
        TemplateParam("mid_min", "Mid tier from", "money", Decimal("300")),
        TemplateParam("low_tag", "Low tier tag", "tag", "Low value"),
        TemplateParam("group", "Exclusive group", "string", "Spend tier"),
    ],
)
def _spend_tiers(p: dict[str, Any]) -> dict[str, Any]:
    if p["mid_min"] >= p["high_min"]:
        raise ValidationError({"params.mid_min": "The mid tier must start below the high tier."})
    if len({p["high_tag"].lower(), p["mid_tag"].lower(), p["low_tag"].lower()}) != 3:
        raise ValidationError({"params.mid_tag": "Each tier needs its own tag."})
    buyer = {"field": "customer.orders_count", "op": "gte", "value": 1}

    def spent(amount: Decimal) -> dict[str, Any]:
        return {"all": [buyer, {"field": "customer.total_spent", "op": "gte", "value": money(amount)}]}

    group = p["group"]
    return {
        "definition": state_tag(spent(p["high_min"]), p["high_tag"], group=group, rank=3),
        "settings": {},
        "siblings": [
            {"suffix": p["mid_tag"], "definition": state_tag(spent(p["mid_min"]), p["mid_tag"], group=group, rank=2)},
            {"suffix": p["low_tag"], "definition": state_tag(buyer, p["low_tag"], group=group, rank=1)},
        ],
    }


@template(
    "first_time_buyer",
    "Tag first-time buyers",
    "After a customer's first order, tag them [First-time buyer].",
    "order.created",
    "Lifecycle",
    [tag_param("First-time buyer")],
)
def _first_time_buyer(p: dict[str, Any]) -> dict[str, Any]:
    where = {"field": "customer.orders_count", "op": "eq", "value": 1}
    return simple(definition("order.created", [add_tags("s1", [p["tag"]])], where=where))


@template(
    "staff",
    "Tag staff accounts",
    "Customers registering with an e-mail address at the staff domain are tagged [Staff].",
    "customer.registered",
    "Lifecycle",
    [tag_param("Staff"), TemplateParam("domain", "E-mail domain", "string", "@staff.example.com")],
)
def _staff(p: dict[str, Any]) -> dict[str, Any]:
    domain = p["domain"].lower()
    if not domain.startswith("@"):
        domain = "@" + domain
    where = {"field": "customer.email", "op": "ends_with", "value": domain}
    return simple(definition("customer.registered", [add_tags("s1", [p["tag"]])], where=where))


@template(
    "high_value",
    "Tag high-value customers",
    "State tag: customers whose order count and total spend reach the thresholds carry [High-value customer]; "
    "a cancellation or refund that pulls them back under takes it off.",
    STATE_TRIGGER,
    "Value",
    [
        tag_param("High-value customer"),
        TemplateParam("min_orders", "Orders at least", "int", 5),
        TemplateParam("min_spent", "Total spent at least", "money", Decimal("1000")),
    ],
)
def _high_value(p: dict[str, Any]) -> dict[str, Any]:
    condition = {
        "all": [
            {"field": "customer.orders_count", "op": "gte", "value": p["min_orders"]},
            {"field": "customer.total_spent", "op": "gte", "value": money(p["min_spent"])},
        ]
    }
    return simple(state_tag(condition, p["tag"]))


@template(
    "repeat_buyer",
    "Tag repeat buyers",
    "State tag: at least N orders within the window carry [Repeat buyer]; fewer (a cancellation, the window "
    "sliding) takes it off.",
    STATE_TRIGGER,
    "Lifecycle",
    [
        tag_param("Repeat buyer"),
        TemplateParam("min_orders", "Orders at least", "int", 2),
        TemplateParam("days", "Within (days)", "days", 90),
    ],
)
def _repeat_buyer(p: dict[str, Any]) -> dict[str, Any]:
    condition = {"field": "customer.orders_count", "window": {"days": p["days"]}, "op": "gte", "value": p["min_orders"]}
    return simple(state_tag(condition, p["tag"]))


@template(
    "abandoned_cart_products",
    "Tag abandoned carts holding specific products",
    "When an abandoned cart holds one of these products (by name, whole words), tag the customer.",
    "cart.abandoned",
    "Products",
    [
        tag_param("Abandoned Electronics"),
        TemplateParam("products", "Product names", "strings", ["Television", "Earbuds"]),
    ],
)
def _abandoned_cart(p: dict[str, Any]) -> dict[str, Any]:
    where = {
        "field": "cart.lines",
        "op": "any",
        "where": {"field": "line.title", "op": "contains_words_any", "value": p["products"]},
    }
    return simple(definition("cart.abandoned", [add_tags("s1", [p["tag"]])], where=where))


@template(
    "planned_visit_reminder",
    "Planned-visit reminder",
    "N days after an order, e-mail the customer if they have not ordered again since.",
    "order.created",
    "Reminders",
    [
        TemplateParam("days", "Remind after (days)", "days", 30),
        TemplateParam("subject", "E-mail subject", "string", "We miss you, {{ customer.first_name }}"),
        TemplateParam(
            "body", "E-mail text", "string", "It has been a while since your last visit. Come and see what is new!"
        ),
        tag_param("Reminded", "Tag reminded customers"),
    ],
)
def _planned_visit(p: dict[str, Any]) -> dict[str, Any]:
    # After the wait the condition sees fresh data: any newer order moves last_order_at inside the window.
    not_again = {"field": "customer.last_order_at", "op": "lte", "value": {"days_ago": p["days"]}}
    steps: list[dict[str, Any]] = [
        {"id": "s1", "wait": {"days": p["days"]}},
        {
            "id": "s2",
            "if": not_again,
            "then": [email("s3", p["subject"], p["body"]), add_tags("s4", [p["tag"]])],
            "else": [],
        },
    ]
    return simple(definition("order.created", steps))


@template(
    "near_store",
    "Notify customers near a store",
    "When a customer's location ping falls inside a store's radius, send them a message.",
    "customer.near_store",
    "Reminders",
    [
        TemplateParam("subject", "E-mail subject", "string", "You are near {{ store.name }}"),
        TemplateParam("body", "E-mail text", "string", "Drop by {{ store.name }} today and show your loyalty QR code."),
        tag_param("Visited near store", "Tag notified customers"),
        TemplateParam("quiet_hours", "At most one message per (hours)", "int", 24),
    ],
)
def _near_store(p: dict[str, Any]) -> dict[str, Any]:
    steps = [
        email("s1", p["subject"], p["body"]),
        add_tags("s2", [p["tag"]]),
    ]
    # A customer walking around the store pings many times: one message per quiet period.
    return simple(definition("customer.near_store", steps), min_interval_minutes=p["quiet_hours"] * 60)


@template(
    "birthday_message",
    "Birthday message",
    "On the customer's birthday (the daily birthday trigger; Feb 29 birthdays on Feb 28 in other years), "
    "send them a marketing e-mail.",
    "customer.birthday",
    "Reminders",
    [
        TemplateParam("subject", "E-mail subject", "string", "Happy birthday, {{ customer.first_name }}!"),
        TemplateParam("body", "E-mail text", "string", "All the best from all of us. Treat yourself on your day!"),
    ],
)
def _birthday(p: dict[str, Any]) -> dict[str, Any]:
    return simple(definition("customer.birthday", [email("s1", p["subject"], p["body"])]))


# --- Selectors and services --------------------------------------------------------------------------


def template_register(spec: TemplateSpec) -> TemplateSpec:
    """Add another app's template to the gallery (from its `automation.py`); idempotent per key."""
    TEMPLATES.setdefault(spec.key, spec)
    return TEMPLATES[spec.key]


def template_list() -> list[TemplateSpec]:
    return list(TEMPLATES.values())


def template_get(key: str) -> TemplateSpec:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise ValidationError({"key": f"Unknown template {key!r}."}) from None


@transaction.atomic
def template_install(
    *, key: str, params: dict[str, Any] | None, user: Any, name: str | None = None, activate: bool = False
) -> Any:
    """
    Install a template as an ordinary DRAFT workflow (through the engine's `workflow_create`, which
    validates the definition against the catalog and registries) that remembers its template key; with
    `activate`, activate it in the same transaction (nothing is installed if activation is refused).
    Param errors name `params.<name>`.
    """
    from apps.automations.services import workflow_activate, workflow_create

    spec = template_get(key)
    built = spec.build(params)
    settings = dict(built["settings"])
    title = (name or spec.name).strip()
    workflow = workflow_create(
        name=title[:200] if not built.get("siblings") else f"{title} — {built['definition']['state']['tag']}"[:200],
        definition=built["definition"],
        user=user,
        template=spec.key,
        **settings,
    )
    # A template of several state tags (one exclusive group) installs one workflow per tag.
    siblings = [
        workflow_create(
            name=f"{title} — {sibling['suffix']}"[:200],
            definition=sibling["definition"],
            user=user,
            template=spec.key,
        )
        for sibling in built.get("siblings") or []
    ]
    if activate:
        for sibling in siblings:
            workflow_activate(workflow=sibling, user=user)
        workflow = workflow_activate(workflow=workflow, user=user)
    workflow.installed_with = siblings  # type: ignore[attr-defined]  # read by the API's install answer
    return workflow
