"""The form fields of the condition language: `form.name` and `form.fields.*` under the `form.submitted` trigger."""

from typing import Any

from loyalty_site.lib.conditions import catalog


def _payload(context: Any) -> dict[str, Any]:
    payload = (context.extra or {}).get("payload") or {}
    return payload if isinstance(payload, dict) else {}


def _read_form_name(context: Any, **kwargs: Any) -> Any:
    return _payload(context).get("form")


def _read_form_field(context: Any, key: str = "", **kwargs: Any) -> Any:
    fields = _payload(context).get("fields") or {}
    if not isinstance(fields, dict):
        return None
    value = fields.get(key, fields.get(f"attribute:{key}"))  # a custom attribute is read by its own key
    return None if isinstance(value, (dict, list)) else value


catalog.register_field(
    catalog.FieldSpec(
        name="form.name",
        type="text",
        label="Form (page address)",
        scope="form",
        description="The slug of the landing page whose form was sent.",
        read=_read_form_name,
        example="newsletter",
    )
)
catalog.register_field(
    catalog.FieldSpec(
        name="form.fields.*",
        type="text",
        label="Form field",
        scope="form",
        description="A field of the sent form, e.g. form.fields.first_name, or a custom attribute by its key "
        "(form.fields.shoe_size).",
        read=_read_form_field,
        example="Ada",
    )
)
