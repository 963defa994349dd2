"""What this app offers the automation engine: triggers and actions (its fields are in `fields.py`)."""

# --- Triggers --------------------------------------------------------------------------------------


def _register_triggers() -> None:
    from apps.automations.registry import TriggerSpec, register_trigger

    for name, label, description, scopes, group in (
        (
            "customer.registered",
            "Customer registered",
            "A registered account was created, or a guest registered (never a guest checkout).",
            ("customer",),
            "Customers",
        ),
        (
            "customer.activated",
            "Customer activated",
            "A guest or invited customer activated an account (became registered).",
            ("customer",),
            "Customers",
        ),
        (
            "customer.updated",
            "Customer profile updated",
            "A customer's profile fields or account state changed (API, import, admin, a workflow).",
            ("customer",),
            "Customers",
        ),
        (
            "customer.unsubscribed",
            "Customer unsubscribed",
            "A customer withdrew marketing consent.",
            ("customer",),
            "Customers",
        ),
        (
            "customer.consent_confirmed",
            "Customer confirmed consent",
            "A customer clicked the double opt-in link: marketing consent is now granted.",
            ("customer",),
            "Customers",
        ),
        ("order.created", "Order created", "An order was placed (any channel).", ("customer", "order"), "Orders"),
        ("order.cancelled", "Order cancelled", "An order was cancelled.", ("customer", "order"), "Orders"),
        ("order.refunded", "Order refunded", "A refund was recorded on an order.", ("customer", "order"), "Orders"),
        (
            "order.updated",
            "Order edited",
            "An order's lines or amounts were changed after it was placed (e.g. a shop's order edit).",
            ("customer", "order"),
            "Orders",
        ),
        (
            "product.purchased",
            "Product purchased",
            "Once per product line of a new order.",
            ("customer", "order", "line", "product"),
            "Orders",
        ),
        (
            "draft_order.created",
            "Draft order created",
            "A draft order was created.",
            ("customer", "draft_order"),
            "Orders",
        ),
        (
            "cart.abandoned",
            "Cart abandoned",
            "A checkout was abandoned (or updated while abandoned).",
            ("customer", "cart"),
            "Orders",
        ),
        (
            "event.custom",
            "Custom event",
            "A named custom event (filter on event.name in the trigger).",
            ("customer", "event"),
            "Events",
        ),
        (
            "customer.near_store",
            "Customer near a store",
            "A location ping inside a store's radius.",
            ("customer", "store", "location"),
            "Events",
        ),
        (
            "customer.bulk_activity",
            "Bulk customer activity",
            "On a schedule, over an audience of customers.",
            ("customer",),
            "Scheduled",
        ),
        (
            "customer.birthday",
            "Customer birthday",
            "Daily, for customers whose birthday is today.",
            ("customer",),
            "Scheduled",
        ),
    ):
        register_trigger(TriggerSpec(name=name, label=label, description=description, scopes=scopes, group=group))


_register_triggers()

# --- Actions ---------------------------------------------------------------------------------------

UPDATABLE_FIELDS = ("first_name", "last_name", "phone", "country", "preferred_currency", "attribute")


def _update_attribute_target(params: dict) -> tuple[str, str]:
    field = str(params.get("field") or "")
    key = str(params.get("key") or "").strip()
    if field not in UPDATABLE_FIELDS:
        from apps.automations.registry import ActionRefused

        raise ActionRefused(f"Unknown customer field {field!r}.")
    if field == "attribute" and not key:
        from apps.automations.registry import ActionRefused

        raise ActionRefused("A custom attribute needs a key.")
    return field, key


def run_update_attribute(context, params: dict, effect_key: str) -> dict:
    """Set one profile field or one custom attribute; re-running it sets the same value (idempotent)."""
    from .models import Customer
    from .services import customer_update

    field, key = _update_attribute_target(params)
    value = params.get("value")
    customer = Customer.objects.select_for_update().get(pk=context.customer.pk)
    if field == "attribute":
        attributes = dict(customer.attributes or {})
        old = attributes.get(key)
        attributes[key] = value
        customer_update(customer=customer, attributes=attributes)
        return {"field": f"attributes.{key}", "old": old, "new": value}
    old = getattr(customer, field)
    customer_update(customer=customer, **{field: value or ""})
    return {"field": field, "old": old, "new": getattr(customer, field)}


def preview_update_attribute(context, params: dict) -> dict:
    field, key = _update_attribute_target(params)
    name = f"attributes.{key}" if field == "attribute" else field
    return {"would_set": name, "to": params.get("value")}


def _register_actions() -> None:
    from apps.automations.registry import ActionSpec, ParamSpec, register_action

    register_action(
        ActionSpec(
            name="customer.update_attribute",
            label="Update customer field",
            description="Set a profile field or a custom attribute of the customer.",
            group="Customers",
            params=[
                ParamSpec(name="field", type="choice", label="Field", required=True, choices=UPDATABLE_FIELDS),
                ParamSpec(name="key", type="text", label="Custom attribute key", help="Only for “attribute”."),
                ParamSpec(name="value", type="text", label="Value", dynamic=True),
            ],
            run=run_update_attribute,
            preview=preview_update_attribute,
        )
    )


_register_actions()
