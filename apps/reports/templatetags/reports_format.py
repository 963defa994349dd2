"""How report figures and cells read: money in the shop currency, percentages, dates, empty as —."""

from datetime import date
from decimal import Decimal
from typing import Any

from django import template

from loyalty_site.lib.money import money_format

register = template.Library()


def _format(value: Any, kind: str, currency: str) -> str:
    if value is None or value == "":
        return "—"
    if kind == "money":
        return money_format(Decimal(value), currency)
    if kind == "percent":
        return f"{value} %"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@register.simple_tag
def figure_value(value: Any, kind: str, currency: str) -> str:
    return _format(value, kind, currency)


@register.simple_tag
def cell(row: dict, column: Any, currency: str) -> str:
    return _format(row.get(column.key), column.kind, currency)
