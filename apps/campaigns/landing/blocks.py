"""
The blocks a landing page is made of, as JSON schemas (one per block type), and the page templates.

A page's `blocks` is a list of objects `{"type": "<type>", ...}`. `blocks_errors` checks it against these
schemas and answers `{path: message}` with paths such as `blocks[2].items[0].question`, so the service, the
API and the console editor show the same errors. Sizes are capped in the schemas (number of blocks, items,
string lengths) and the whole list is capped in bytes before anything walks it.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

MAX_BLOCKS = 30
MAX_BLOCKS_BYTES = 64 * 1024

# Customer fields a form may ask for; `attribute:<key>` maps to a custom attribute.
CUSTOMER_FORM_FIELDS = {
    "email": "E-mail",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
    "birthday": "Birthday",
    "country": "Country",
}
ATTRIBUTE_PREFIX = "attribute:"
ATTRIBUTE_PATTERN = r"^(email|first_name|last_name|phone|birthday|country|attribute:[a-z][a-z0-9_]{0,39})$"
CONSENT_CHANNELS = ("email", "sms")

_text = {"type": "string", "maxLength": 2000}
_line = {"type": "string", "maxLength": 160}
_url = {"type": "string", "maxLength": 500, "pattern": r"^(https://|/)[^\s<>\"']*$"}


def _block(type_: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"type": {"const": type_}, **properties},
        "required": ["type", *required],
        "additionalProperties": False,
    }


def _items(properties: dict[str, Any], required: tuple[str, ...], max_items: int) -> dict[str, Any]:
    return {
        "type": "array",
        "maxItems": max_items,
        "items": {
            "type": "object",
            "properties": properties,
            "required": list(required),
            "additionalProperties": False,
        },
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "hero": _block(
        "hero",
        {
            "title": {**_line, "minLength": 1},
            "text": _text,
            "image_url": {"anyOf": [_url, {"const": ""}]},
            "image_alt": _line,
            "button_label": _line,
            "button_url": {"anyOf": [_url, {"pattern": r"^#[a-z0-9-]{0,40}$"}, {"const": ""}]},
        },
        ("title",),
    ),
    "how_to_earn": _block("how_to_earn", {"title": _line, "text": _text}),
    "rewards": _block("rewards", {"title": _line, "limit": {"type": "integer", "minimum": 1, "maximum": 24}}),
    "tiers": _block("tiers", {"title": _line}),
    "referral": _block("referral", {"title": _line, "text": _text}),
    "form": _block(
        "form",
        {
            "title": _line,
            "text": _text,
            "fields": {
                **_items(
                    {
                        "name": {"type": "string", "pattern": ATTRIBUTE_PATTERN},
                        "label": {**_line, "minLength": 1},
                        "required": {"type": "boolean"},
                    },
                    ("name", "label"),
                    12,
                ),
                "minItems": 1,
            },
            "consent_channels": {
                "type": "array",
                "items": {"enum": list(CONSENT_CHANNELS)},
                "uniqueItems": True,
                "maxItems": len(CONSENT_CHANNELS),
            },
            "consent_text": _text,
            "join_program": {"type": "boolean"},
            "voucher_campaign": {"type": ["integer", "null"], "minimum": 1},
            "submit_label": _line,
            "success_text": _text,
        },
        ("fields",),
    ),
    "countdown": _block(
        "countdown",
        {"title": _line, "campaign": {"type": "integer", "minimum": 1}, "ended_text": _line},
        ("campaign",),
    ),
    "faq": _block(
        "faq",
        {
            "title": _line,
            "items": _items(
                {"question": {**_line, "minLength": 1}, "answer": {**_text, "minLength": 1}}, ("question", "answer"), 30
            ),
        },
        ("items",),
    ),
    "footer": _block(
        "footer",
        {"text": _text, "links": _items({"label": {**_line, "minLength": 1}, "url": _url}, ("label", "url"), 10)},
    ),
}
LABELS = {
    "hero": "Hero",
    "how_to_earn": "How to earn",
    "rewards": "Rewards catalogue",
    "tiers": "Tiers table",
    "referral": "Referral share box",
    "form": "Sign-up form",
    "countdown": "Countdown",
    "faq": "FAQ",
    "footer": "Footer",
}
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}


def _path(prefix: str, parts: Any) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _message(error: Any) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "Unknown field(s)")
    if error.validator == "pattern" and error.path and error.path[-1] == "name":
        return "Unknown field: use email, first_name, last_name, phone, birthday, country or attribute:<key>."
    if error.validator in ("pattern", "anyOf") and error.path and str(error.path[-1]).endswith("url"):
        return "Give an https:// address, a path starting with /, or nothing."
    if error.validator == "minLength" and error.validator_value == 1:
        return "This field is required."
    if error.validator == "required":
        return "This field is required."
    return str(error.message)


def blocks_errors(blocks: Any) -> dict[str, str]:
    """Every problem of a page's blocks as {path: message}; {} when they are valid."""
    if not isinstance(blocks, list):
        return {"blocks": "Blocks must be a list."}
    if len(json.dumps(blocks, default=str)) > MAX_BLOCKS_BYTES:
        return {"blocks": f"The page is too large (at most {MAX_BLOCKS_BYTES // 1024} KiB of content)."}
    if len(blocks) > MAX_BLOCKS:
        return {"blocks": f"At most {MAX_BLOCKS} blocks."}
    errors: dict[str, str] = {}
    forms = 0
    for index, block in enumerate(blocks):
        prefix = f"blocks[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in _VALIDATORS:
            errors[f"{prefix}.type"] = f"Unknown block type; one of {', '.join(SCHEMAS)}."
            continue
        for error in sorted(_VALIDATORS[kind].iter_errors(block), key=lambda e: list(map(str, e.path))):
            parts = list(error.path)
            if error.validator == "required":
                parts.append(error.message.split("'")[1])
            errors.setdefault(_path(prefix, parts), _message(error))
        if (
            kind == "hero"
            and str(block.get("image_url") or "").strip()
            and not str(block.get("image_alt") or "").strip()
        ):
            errors.setdefault(
                f"{prefix}.image_alt",
                "Describe the image for people who cannot see it (required with an image).",
            )
        if kind == "form":
            forms += 1
            if forms > 1:
                errors[f"{prefix}.type"] = "A page has at most one form."
            names = [field.get("name") for field in block.get("fields") or [] if isinstance(field, dict)]
            if "email" not in names:
                errors.setdefault(f"{prefix}.fields", "A form needs the e-mail field (it identifies the customer).")
            for position, name in enumerate(names):
                if name in names[:position]:
                    errors.setdefault(f"{prefix}.fields[{position}].name", "This field is asked twice.")
            if "sms" in (block.get("consent_channels") or []) and "phone" not in names:
                errors.setdefault(f"{prefix}.consent_channels", "An SMS consent box needs the phone field in the form.")
            rewarding = block.get("join_program") or block.get("voucher_campaign")
            if rewarding and "email" not in (block.get("consent_channels") or []):
                errors.setdefault(
                    f"{prefix}.consent_channels",
                    "A form that joins the program or gives a voucher needs the e-mail consent box: the reward is "
                    "given once the address is confirmed.",
                )
    return errors


def form_block(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((block for block in blocks if block.get("type") == "form"), None)


def template_blocks(template: str) -> list[dict[str, Any]]:
    """The blocks a new page starts with."""
    form = {
        "type": "form",
        "title": "Sign up",
        "fields": [
            {"name": "email", "label": "E-mail", "required": True},
            {"name": "first_name", "label": "First name", "required": False},
        ],
        "consent_channels": ["email"],
        "consent_text": "Send me news and offers by e-mail.",
        "join_program": True,
        "voucher_campaign": None,
        "submit_label": "Sign up",
        "success_text": "Almost done: check your inbox and confirm your address.",
    }
    footer = {"type": "footer", "text": "", "links": []}
    if template == "blank":
        return []
    if template == "loyalty":
        return [
            {
                "type": "hero",
                "title": "Join our rewards club",
                "text": "Earn points on every order.",
                "button_label": "Join now",
                "button_url": "#signup",
            },
            {"type": "how_to_earn", "title": "How to earn"},
            {"type": "rewards", "title": "Rewards", "limit": 6},
            {"type": "tiers", "title": "Tiers"},
            form,
            footer,
        ]
    if template == "referral":
        return [
            {
                "type": "hero",
                "title": "{inviter} invited you to {program}",
                "text": "Sign up below: your welcome points are waiting.",
                "button_label": "",
                "button_url": "",
            },
            {"type": "referral", "title": "What you get", "text": ""},
            form,
            footer,
        ]
    return [
        {
            "type": "hero",
            "title": "Get 5 % off your next order",
            "text": "Sign up for our newsletter.",
            "button_label": "Sign up",
            "button_url": "#signup",
        },
        {**form, "join_program": False},
        {
            "type": "faq",
            "title": "Questions",
            "items": [{"question": "How long is the code valid?", "answer": "One month from sign-up."}],
        },
        footer,
    ]
