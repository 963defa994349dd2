"""
The console's block editor, without a raw JSON box: every block field is a real input named after its JSON
path (`blocks[2].items[0].question` ↔ `b-2-items-0-question`), lists get one empty row to add to (a row
left empty is dropped), and blocks are added, removed and moved with buttons. `blocks_from_post` reads the
posted inputs back into blocks; `editor_blocks` describes the inputs to draw, with each error on its input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict

from .blocks import CONSENT_CHANNELS, CUSTOMER_FORM_FIELDS, LABELS, MAX_BLOCKS

# (key, kind, label); kinds: text, textarea, int, bool, channels, campaign, image (an address, plus a file input
# `<name>-upload` whose upload replaces it), list:<name>
FIELDS: dict[str, list[tuple[str, str, str]]] = {
    "hero": [
        ("title", "text", "Title"),
        ("text", "textarea", "Text"),
        ("image_url", "image", "Image: upload one, or give its address (https://… or /…)"),
        ("image_alt", "text", "Image description for screen readers (required with an image)"),
        ("button_label", "text", "Button label"),
        ("button_url", "text", "Button link (#signup, https://… or /…)"),
    ],
    "how_to_earn": [("title", "text", "Title"), ("text", "textarea", "Text above the ways to earn")],
    "rewards": [("title", "text", "Title"), ("limit", "int", "How many rewards to show (1 to 24)")],
    "tiers": [("title", "text", "Title")],
    "referral": [("title", "text", "Title"), ("text", "textarea", "Text")],
    "form": [
        ("title", "text", "Title"),
        ("text", "textarea", "Text above the form"),
        ("fields", "list:fields", "Fields"),
        ("consent_channels", "channels", "Consent boxes"),
        ("consent_text", "text", "Consent text"),
        ("join_program", "bool", "Join the loyalty program on confirmation"),
        ("voucher_campaign", "campaign", "Voucher on confirmation (a code of this campaign)"),
        ("submit_label", "text", "Button label"),
        ("success_text", "textarea", "Text after sending"),
    ],
    "countdown": [
        ("title", "text", "Title"),
        ("campaign", "campaign", "Count down to the end of campaign"),
        ("ended_text", "text", "Text once it has ended"),
    ],
    "faq": [("title", "text", "Title"), ("items", "list:faq", "Questions")],
    "footer": [("text", "textarea", "Text"), ("links", "list:links", "Links")],
}
ROWS: dict[str, list[tuple[str, str, str]]] = {
    "fields": [("name", "field_name", "Customer field"), ("label", "text", "Label"), ("required", "bool", "Required")],
    "faq": [("question", "text", "Question"), ("answer", "textarea", "Answer")],
    "links": [("label", "text", "Label"), ("url", "text", "Link")],
}
MAX_ROWS = 30
_PATH_PART = re.compile(r"\[(\d+)\]|\.([a-z_]+)")


def input_name(path: str) -> str:
    """`blocks[2].items[0].question` → `b-2-items-0-question`."""
    parts = [index or key for index, key in _PATH_PART.findall(path.removeprefix("blocks"))]
    return "-".join(["b", *parts])


def _int_or_raw(raw: str) -> Any:
    raw = raw.strip()
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return raw  # the schema says what is wrong with it


def _count(post: QueryDict, name: str, cap: int) -> int:
    try:
        return max(0, min(int(post.get(name, "0")), cap))
    except ValueError:
        return 0


def _value(post: QueryDict, name: str, kind: str) -> Any:
    if kind == "bool":
        return post.get(name) == "on"
    if kind == "channels":
        return [channel for channel in CONSENT_CHANNELS if channel in post.getlist(name)]
    if kind in ("int", "campaign"):
        return _int_or_raw(post.get(name, ""))
    return post.get(name, "").strip()


def blocks_from_post(post: QueryDict) -> list[dict[str, Any]]:
    """The blocks the editor's inputs describe, in their order on the page."""
    blocks: list[dict[str, Any]] = []
    for index in range(_count(post, "blocks-count", MAX_BLOCKS + 1)):
        prefix = f"b-{index}"
        kind = post.get(f"{prefix}-type", "")
        block: dict[str, Any] = {"type": kind}
        for key, field_kind, _label in FIELDS.get(kind, []):
            name = f"{prefix}-{key}"
            if field_kind.startswith("list:"):
                rows = []
                specs = ROWS[field_kind.removeprefix("list:")]
                for row in range(_count(post, f"{name}-count", MAX_ROWS + 1)):
                    values = {sub: _value(post, f"{name}-{row}-{sub}", sub_kind) for sub, sub_kind, _ in specs}
                    if any(value not in ("", None, False) for sub, value in values.items() if sub != "required"):
                        rows.append(values)
                block[key] = rows
                continue
            value = _value(post, name, field_kind)
            if field_kind in ("int", "campaign") and value is None:
                if kind == "form":
                    block[key] = None
                continue
            block[key] = value
        blocks.append(block)
    return blocks


def blocks_apply(blocks: list[dict[str, Any]], operation: str, new_type: str = "") -> list[dict[str, Any]]:
    """Add (`add`, at the end), remove, or move a block up/down (`remove:2`, `up:2`, `down:2`)."""
    from .blocks import template_blocks

    blocks = list(blocks)
    verb, _, position = operation.partition(":")
    if verb == "add" and new_type in FIELDS and len(blocks) < MAX_BLOCKS:
        starter = next(
            (block for block in template_blocks("loyalty") + template_blocks("signup") if block["type"] == new_type),
            None,
        )
        blocks.append(dict(starter) if starter else _empty(new_type))
        return blocks
    if not position.isdigit() or not 0 <= int(position) < len(blocks):
        return blocks
    index = int(position)
    if verb == "remove":
        blocks.pop(index)
    elif verb == "up" and index > 0:
        blocks[index - 1], blocks[index] = blocks[index], blocks[index - 1]
    elif verb == "down" and index < len(blocks) - 1:
        blocks[index + 1], blocks[index] = blocks[index], blocks[index + 1]
    return blocks


def _empty(kind: str) -> dict[str, Any]:
    if kind == "faq":
        return {"type": "faq", "title": "Questions", "items": [{"question": "Question?", "answer": "Answer."}]}
    if kind == "countdown":
        return {"type": "countdown", "title": "Ends in"}
    return {"type": kind, "title": LABELS[kind]} if kind != "footer" else {"type": "footer", "text": "", "links": []}


@dataclass
class EditorInput:
    name: str
    kind: str
    label: str
    value: Any
    error: str = ""
    choices: list[tuple[Any, str]] = field(default_factory=list)
    rows: list[list[EditorInput]] = field(default_factory=list)


@dataclass
class EditorBlock:
    index: int
    type: str
    label: str
    inputs: list[EditorInput]
    errors: list[str]


def editor_blocks(
    blocks: list[dict[str, Any]], errors: dict[str, str], campaigns: list[tuple[int, str]]
) -> tuple[list[EditorBlock], list[str]]:
    """The inputs to draw per block (errors placed on their input) and the errors no input shows."""
    by_name = {input_name(path): message for path, message in errors.items() if path.startswith("blocks[")}
    used: set[str] = set()
    field_choices = [(key, label) for key, label in CUSTOMER_FORM_FIELDS.items()]

    def take(name: str) -> str:
        if name in by_name:
            used.add(name)
            return by_name[name]
        return ""

    drawn: list[EditorBlock] = []
    for index, block in enumerate(blocks):
        prefix = f"b-{index}"
        kind = str(block.get("type", ""))
        take(f"{prefix}-type")
        inputs: list[EditorInput] = []
        for key, field_kind, label in FIELDS.get(kind, []):
            name = f"{prefix}-{key}"
            if field_kind.startswith("list:"):
                specs = ROWS[field_kind.removeprefix("list:")]
                values = [row for row in block.get(key) or [] if isinstance(row, dict)]
                rows = []
                for row_index, row in enumerate([*values, {}]):  # one empty row to add to
                    row_inputs = []
                    for sub, sub_kind, sub_label in specs:
                        sub_name = f"{name}-{row_index}-{sub}"
                        value = row.get(sub, "" if sub_kind != "bool" else False)
                        choices: list[tuple[Any, str]] = list(field_choices)
                        if sub_kind == "field_name" and value and value not in CUSTOMER_FORM_FIELDS:
                            choices.append((value, f"Custom attribute: {str(value).removeprefix('attribute:')}"))
                        row_inputs.append(
                            EditorInput(
                                sub_name,
                                sub_kind,
                                f"{sub_label} {row_index + 1}",
                                value,
                                take(sub_name),
                                choices if sub_kind == "field_name" else [],
                            )
                        )
                    rows.append(row_inputs)
                inputs.append(EditorInput(name, "list", label, len(rows), take(name), rows=rows))
                continue
            value = block.get(key)
            options: list[tuple[Any, str]] = []
            if field_kind == "campaign":
                options = [("", "— none —"), *campaigns]
            if field_kind == "channels":
                options = [(channel, channel.upper() if channel == "sms" else "E-mail") for channel in CONSENT_CHANNELS]
            inputs.append(EditorInput(name, field_kind, label, value if value is not None else "", take(name), options))
        own = [
            message
            for name, message in by_name.items()
            if name not in used and (name == prefix or name.startswith(prefix + "-"))
        ]
        used.update(name for name in by_name if name == prefix or name.startswith(prefix + "-"))
        drawn.append(EditorBlock(index, kind, LABELS.get(kind, kind), inputs, own))
    rest = [message for name, message in by_name.items() if name not in used]
    rest += [
        f"{path}: {message}"
        for path, message in errors.items()
        if not path.startswith("blocks[") and path not in ("slug", "title", "template")
    ]
    return drawn, rest


def upload_fields(blocks: list[dict[str, Any]]) -> dict[int, str]:
    """Block index → the name of its file input (blocks with an image field)."""
    return {
        index: f"b-{index}-{key}-upload"
        for index, block in enumerate(blocks)
        for key, kind, _label in FIELDS.get(str(block.get("type", "")), [])
        if kind == "image"
    }
