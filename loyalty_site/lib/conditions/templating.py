"""
Dynamic parameters in string params: `{{ order.currency }} buyer`, `{{ product.tags }} fan`.

A sandboxed renderer: a variable is a catalog field name and nothing else (no attribute access, no
filters, no expressions, no eval). A list-valued field expands the text into one string per item
(several list fields give every combination); an unset scalar renders as an empty string.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from .catalog import field_get
from .context import ConditionError, EvaluationContext
from .evaluation import read_field

FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[A-Za-z0-9_\-]+)+$")
MAX_EXPANSIONS = 100
# Longer texts are refused before they are scanned (an e-mail body fits many times over).
MAX_TEMPLATE_TEXT = 20_000


class TemplateTooLong(ValueError):
    """A text longer than MAX_TEMPLATE_TEXT reached the renderer (validation refuses it at save)."""


def _scan(text: str) -> tuple[list[str], list[str]]:
    """
    `text` as literal pieces and the variable names between them (`pieces[i]` comes before `names[i]`),
    in one left-to-right pass: every search starts where the previous one ended, so the scan is
    linear whatever the text (1 MB of "{{{{…" included). A "{{" that never closes stays literal.
    """
    pieces: list[str] = []
    names: list[str] = []
    position = 0
    while True:
        start = text.find("{{", position)
        if start == -1:
            break
        end = text.find("}}", start + 2)
        if end == -1:
            break
        pieces.append(text[position:start])
        names.append(text[start + 2 : end].strip())
        position = end + 2
    pieces.append(text[position:])
    return pieces, names


def _too_long(text: str) -> bool:
    return len(text) > MAX_TEMPLATE_TEXT


def template_variables(text: str) -> list[str]:
    if _too_long(text):
        raise TemplateTooLong(f"text longer than {MAX_TEMPLATE_TEXT} characters")
    return _scan(text)[1]


def template_validate(text: str, *, path: str, scopes: Iterable[str]) -> list[ConditionError]:
    """Every unknown or unavailable variable in `text`, reported at `path`."""
    if _too_long(text):
        return [ConditionError(path=path, message=f"text longer than {MAX_TEMPLATE_TEXT} characters")]
    scopes = set(scopes)
    errors: list[ConditionError] = []
    pieces, names = _scan(text)
    for name in names:
        if not FIELD_NAME.match(name):
            errors.append(ConditionError(path=path, message=f'"{{{{ {name} }}}}" is not a field name'))
            continue
        try:
            spec = field_get(name)
        except KeyError:
            errors.append(ConditionError(path=path, message=f'unknown variable "{name}"'))
            continue
        if spec.scope not in scopes:
            errors.append(
                ConditionError(path=path, message=f'"{name}" is not available here (it needs a {spec.scope})')
            )
        elif spec.type == "list":
            errors.append(ConditionError(path=path, message=f'"{name}" is a list of {spec.item_scope}s, not text'))
    if any("{{" in piece or "}}" in piece for piece in pieces):
        errors.append(ConditionError(path=path, message='unbalanced "{{" or "}}"'))
    return errors


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return timezone.localtime(value).date().isoformat() if timezone.is_aware(value) else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def template_render(text: str, context: EvaluationContext) -> list[str]:
    """
    `text` with its variables replaced. Scalars give one string; a list field gives one string per
    item ("{{ product.tags }} fan" -> ["Kids fan", "Toys fan"]), an empty list gives none.
    """
    if _too_long(text):
        raise TemplateTooLong(f"text longer than {MAX_TEMPLATE_TEXT} characters")
    pieces, names = _scan(text)
    if not names:
        return [text]
    options: list[list[str]] = []
    for name in names:
        spec = field_get(name)
        value = read_field(spec, context)
        if spec.type == "tags":
            items = [_text(item) for item in value or ()]
            options.append(list(dict.fromkeys(items)))
        else:
            options.append([_text(value)])
    results: list[str] = []
    for combination in itertools.islice(itertools.product(*options), MAX_EXPANSIONS):
        rendered = [pieces[0]]
        for value, piece in zip(combination, pieces[1:], strict=True):
            rendered += [value, piece]
        results.append("".join(rendered))
    return list(dict.fromkeys(results))


def template_render_text(text: str, context: EvaluationContext, *, escape: Callable[[str], str] | None = None) -> str:
    """
    `text` as ONE string, for messages: a list field's items are joined with ", " (no expansion into several
    texts). `escape` is applied to every value put in (never to the template's own text), e.g. HTML or
    Markdown escaping, so a customer's name cannot inject markup.
    """
    if _too_long(text):
        raise TemplateTooLong(f"text longer than {MAX_TEMPLATE_TEXT} characters")
    pieces, names = _scan(text)
    out = [pieces[0]]
    for name, piece in zip(names, pieces[1:], strict=True):
        spec = field_get(name)
        value = read_field(spec, context)
        if spec.type == "tags":
            rendered = ", ".join(dict.fromkeys(_text(item) for item in value or ()))
        else:
            rendered = _text(value)
        out += [escape(rendered) if escape else rendered, piece]
    return "".join(out)
