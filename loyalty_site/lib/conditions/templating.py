"""
Dynamic parameters in string params: `{{ order.currency }} buyer`, `{{ product.tags }} fan`.

A sandboxed renderer: a variable is a catalog field name and nothing else (no attribute access, no
filters, no expressions, no eval). A list-valued field expands the text into one string per item
(several list fields give every combination); an unset scalar renders as an empty string.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from .catalog import field_get
from .context import ConditionError, EvaluationContext
from .evaluation import read_field

VARIABLE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[A-Za-z0-9_\-]+)+$")
MAX_EXPANSIONS = 100


def template_variables(text: str) -> list[str]:
    return [match.group(1) for match in VARIABLE.finditer(text)]


def template_validate(text: str, *, path: str, scopes: Iterable[str]) -> list[ConditionError]:
    """Every unknown or unavailable variable in `text`, reported at `path`."""
    scopes = set(scopes)
    errors: list[ConditionError] = []
    for name in template_variables(text):
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
    if "{{" in VARIABLE.sub("", text) or "}}" in VARIABLE.sub("", text):
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
    names = template_variables(text)
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
    pieces = VARIABLE.split(text)
    results: list[str] = []
    for combination in itertools.islice(itertools.product(*options), MAX_EXPANSIONS):
        rendered = list(pieces)
        for index, value in enumerate(combination):
            rendered[2 * index + 1] = value
        results.append("".join(rendered))
    return list(dict.fromkeys(results))
