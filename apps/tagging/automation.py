"""What this app offers the automation engine: triggers and actions (its fields are in `fields.py`)."""

# --- Triggers --------------------------------------------------------------------------------------


def _register_triggers() -> None:
    from apps.automations.registry import TriggerSpec, register_trigger

    register_trigger(
        TriggerSpec(
            name="customer.tag_added",
            label="Tag added to customer",
            description="A tag was added to a customer (filter on the tag's name).",
            scopes=("customer", "tag"),
            group="Customers",
        )
    )
    register_trigger(
        TriggerSpec(
            name="customer.tag_removed",
            label="Tag removed from customer",
            description="A tag was removed from a customer (filter on the tag's name).",
            scopes=("customer", "tag"),
            group="Customers",
        )
    )


_register_triggers()

# --- Actions ---------------------------------------------------------------------------------------


def _tag_names(params: dict) -> list[str]:
    from .services import tag_names_clean

    tags = params.get("tags") or []
    return tag_names_clean([tags] if isinstance(tags, str) else tags)


def _run_ref(context) -> str:
    return (getattr(context, "extra", None) or {}).get("cause") or "workflow"


def run_add_tags(context, params: dict, effect_key: str) -> dict:
    """Add tags with source=workflow and the run as source_ref; tags already there are left alone."""
    from .choices import TagSource
    from .services import tags_add

    names = _tag_names(params)
    added = tags_add(customer=context.customer, names=names, source=TagSource.WORKFLOW, source_ref=_run_ref(context))
    return {"tags": names, "added": sorted(row.tag.name for row in added)}


def run_add_tags_many(contexts: list, params_list: list[dict], effect_keys: list[str]) -> list[dict]:
    """`run_add_tags` for a batch of runs: one set-based `tags_add_many` (same rows, audit and events)."""
    from .choices import TagSource
    from .services import tags_add_many

    names_of = [_tag_names(params) for params in params_list]
    if any(context.customer is None for context in contexts):
        raise ValueError("adding tags needs a customer")  # the engine redoes the runs one by one
    added = tags_add_many(
        additions=[
            (context.customer, names, _run_ref(context)) for context, names in zip(contexts, names_of, strict=True)
        ],
        source=TagSource.WORKFLOW,
    )
    return [
        {"tags": names, "added": sorted(row.tag.name for row in rows)}
        for names, rows in zip(names_of, added, strict=True)
    ]


def run_remove_tags(context, params: dict, effect_key: str) -> dict:
    from .choices import TagSource
    from .services import tags_remove

    names = _tag_names(params)
    removed = tags_remove(
        customer=context.customer, names=names, source=TagSource.WORKFLOW, source_ref=_run_ref(context)
    )
    return {"tags": names, "removed": sorted(removed)}


def _preview(verb: str):
    def preview(context, params: dict) -> dict:
        return {f"would_{verb}": _tag_names(params)}

    return preview


def _register_actions() -> None:
    from apps.automations.registry import ActionSpec, ParamSpec, register_action

    tags = ParamSpec(
        name="tags",
        type="text_list",
        label="Tags",
        required=True,
        help="Dynamic parameters allowed, e.g. {{ order.currency }} buyer; a list (product tags) adds each.",
        dynamic=True,
    )
    register_action(
        ActionSpec(
            name="customer.add_tags",
            label="Add customer tags",
            description="Add one or more tags to the customer.",
            group="Tags",
            params=[tags],
            run=run_add_tags,
            run_many=run_add_tags_many,
            preview=_preview("add"),
        )
    )
    register_action(
        ActionSpec(
            name="customer.remove_tags",
            label="Remove customer tags",
            description="Remove one or more tags from the customer.",
            group="Tags",
            params=[tags],
            run=run_remove_tags,
            preview=_preview("remove"),
        )
    )


_register_actions()
