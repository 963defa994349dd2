"""
The operators of the condition language, each defined ONCE, with its two meanings side by side: how it
holds for a value read in memory (one event) and the `Q` it compiles to over an SQL expression (an
audience over millions of customers). The in-memory evaluator and the SQL compiler both dispatch
through `OPERATORS`; the catalog derives which operators each field type offers, and the builder its
labels, from the same table, so nothing can offer an operator that lacks one of its meanings.

A `Meaning` is an operator on one field type:
- `memory(value, target, now) -> bool`: `value` is what the field read (never None: an unset field
  fails every comparison before it gets here, except for `is_set` / `is_not_set`); `target` is the
  condition's `value` (already validated); for the quantifiers it is a predicate over one item.
- `sql(expr, target, now) -> Q`: `expr` is the field's SQL expression (for tag lists, the pair
  `(correlated item rows, item expression)`); the compiler adds the "is not NULL" guard, so a leaf is
  two-valued and `not` agrees with memory. `None` when the field type has no SQL form (item lists).

Text compares case-insensitively; money compares in SQL within half a cent of the value (SQLite keeps
decimals as binary floats, so sums carry noise far below that; validation allows two decimals only);
`eq` on a date-time means the same local calendar day.
"""

from __future__ import annotations

import operator as python
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db.models import Exists, Q, Value
from django.db.models.functions import Coalesce, Left
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    In,
    IRegex,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
)
from django.utils import timezone

from .values import as_text, day_bounds, resolve_day, resolve_instant, to_decimal, to_decimal_valid

# What an operator takes besides the field: nothing, one value, a list of values, or a "where"
# condition over each item of a list.
NOTHING, VALUE, VALUES, WHERE = "nothing", "value", "values", "where"

MATCH_ALL = Q(pk__isnull=False)
MATCH_NONE = Q(pk__in=[])

# A text longer than this is matched on its first MAX_MATCHED_TEXT characters, in memory and in SQL
# alike (bounded work per regex; the two evaluators still agree).
MAX_MATCHED_TEXT = 10_000


@dataclass(frozen=True)
class Meaning:
    """One operator on one field type: in memory and in SQL, side by side."""

    memory: Callable[[Any, Any, datetime], bool]
    sql: Callable[[Any, Any, datetime], Q] | None


@dataclass(frozen=True)
class Operator:
    """An operator of the condition language: its label, what it takes, and its meaning per field type."""

    name: str
    label: str
    takes: str
    meanings: Mapping[str, Meaning]
    # Wording on date and date-time fields ("is after" rather than "is greater than").
    date_label: str = ""

    @property
    def field_types(self) -> tuple[str, ...]:
        return tuple(self.meanings)

    def holds(self, field_type: str, value: Any, target: Any, *, now: datetime) -> bool:
        """In memory. A value the field type cannot compare (unset, or not a number...) fails comparisons."""
        if self.takes in (VALUE, VALUES) and field_type in COMPARABLE:
            value = COMPARABLE[field_type](value)
            if value is None:
                return False
        return self.meanings[field_type].memory(value, target, now)

    def compiles(self, field_type: str) -> bool:
        meaning = self.meanings.get(field_type)
        return meaning is not None and meaning.sql is not None

    def compile(self, field_type: str, expr: Any, target: Any, *, now: datetime) -> Q:
        sql = self.meanings[field_type].sql
        if sql is None:
            raise ValueError(f'"{self.name}" on a {field_type} field has no SQL form')
        return sql(expr, target, now)


def _any(parts: Iterable[Q]) -> Q:
    parts = list(parts)
    return reduce(python.or_, parts) if parts else MATCH_NONE


# --- Presence (NULL guard) ------------------------------------------------------------------------


def _never_null(expr: Any) -> bool:
    # COALESCE(subquery, <constant>) cannot be NULL: skip the guard so the subquery runs once.
    if isinstance(expr, Coalesce):
        last = expr.get_source_expressions()[-1]
        return isinstance(last, Value) and last.value is not None
    return False


def sql_present(expr: Any) -> Q:
    """`expr IS NOT NULL` (MATCH_ALL when it cannot be NULL)."""
    return MATCH_ALL if _never_null(expr) else Q(IsNull(expr, False))


# --- Text (case-insensitive) ----------------------------------------------------------------------


# A word boundary is any character that is not an ASCII letter or digit (or the start / end of the
# text): "her" matches "for her!" but neither "Hermes" nor "Mother's". The pattern uses only syntax
# that Python's `re` (SQLite's REGEXP in Django) and PostgreSQL's `~*` read the same way, and only
# literal alternatives, so matching is linear in the text.
_BOUNDARY_BEFORE = "(^|[^a-z0-9])"
_BOUNDARY_AFTER = "([^a-z0-9]|$)"


def _escape(word: str) -> str:
    return "".join(char if char.isalnum() or char == " " else "\\" + char for char in word)


def words_pattern(words: Iterable[str]) -> str:
    alternatives = "|".join(_escape(word.strip().lower()) for word in words if word.strip())
    return f"{_BOUNDARY_BEFORE}({alternatives}){_BOUNDARY_AFTER}"


def words_match(text: str, words: Iterable[str]) -> bool:
    return re.search(words_pattern(words), text[:MAX_MATCHED_TEXT], flags=re.IGNORECASE) is not None


def _text_meanings(
    memory: Callable[[str, Any], bool], sql: Callable[[Any, Any], Q], types: tuple[str, ...] = ("text",)
) -> dict[str, Meaning]:
    meaning = Meaning(memory=lambda value, target, now: memory(value.lower(), target), sql=lambda e, t, now: sql(e, t))
    return dict.fromkeys(types, meaning)


# --- Ordered values: numbers, money, booleans, dates, date-times ----------------------------------

# Half a cent: money in SQL compares within this band (see the module docstring).
HALF_CENT = Decimal("0.005")


def _day(value: Any) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if timezone.is_aware(value) else timezone.make_aware(value)


# How the in-memory side reads a field's value before comparing it (None: cannot compare).
COMPARABLE: dict[str, Callable[[Any], Any]] = {
    "text": as_text,
    "choice": as_text,
    "number": to_decimal,
    "integer": to_decimal,
    "money": to_decimal,
    "boolean": lambda value: None if value is None else bool(value),
    "date": _day,
    "datetime": _instant,
}


def _money_within(expr: Any, amount: Decimal) -> Q:
    return Q(GreaterThanOrEqual(expr, amount - HALF_CENT)) & Q(LessThan(expr, amount + HALF_CENT))


def _on_same_day(instant: datetime, target: Any, now: datetime) -> bool:
    start, end = day_bounds(resolve_day(target, now=now))
    return start <= instant < end


def _same_day(expr: Any, target: Any, now: datetime) -> Q:
    start, end = day_bounds(resolve_day(target, now=now))
    return Q(GreaterThanOrEqual(expr, start)) & Q(LessThan(expr, end))


def _ordered(
    compare: Callable[[Any, Any], bool], lookup: type, money: Callable[[Any, Decimal], Q]
) -> dict[str, Meaning]:
    """gt / gte / lt / lte (and, with its own date-time form, eq) on every ordered type."""

    def numbers(value: Decimal, target: Any, now: datetime) -> bool:
        return compare(value, to_decimal(target))

    return {
        "number": Meaning(numbers, lambda e, t, now: Q(lookup(e, to_decimal(t)))),
        "integer": Meaning(numbers, lambda e, t, now: Q(lookup(e, int(to_decimal_valid(t))))),
        "money": Meaning(numbers, lambda e, t, now: money(e, to_decimal_valid(t))),
        "date": Meaning(
            lambda v, t, now: compare(v, resolve_day(t, now=now)),
            lambda e, t, now: Q(lookup(e, resolve_day(t, now=now))),
        ),
        "datetime": Meaning(
            lambda v, t, now: compare(v, resolve_instant(t, now=now)),
            lambda e, t, now: Q(lookup(e, resolve_instant(t, now=now))),
        ),
    }


def _eq_meanings() -> dict[str, Meaning]:
    meanings = _text_meanings(
        lambda text, target: text == target.lower(), lambda e, t: Q(IExact(e, t)), types=("text", "choice")
    )
    meanings.update(_ordered(python.eq, Exact, _money_within))
    meanings["datetime"] = Meaning(_on_same_day, _same_day)
    meanings["boolean"] = Meaning(lambda v, t, now: v == t, lambda e, t, now: Q(Exact(e, t)))
    return meanings


def _in_meanings() -> dict[str, Meaning]:
    meanings = _text_meanings(
        lambda text, targets: text in {item.lower() for item in targets},
        lambda e, targets: _any(Q(IExact(e, item)) for item in targets),
        types=("text", "choice"),
    )

    def numbers_in(value: Decimal, targets: Any, now: datetime) -> bool:
        return value in {to_decimal(item) for item in targets}

    meanings["number"] = Meaning(numbers_in, lambda e, t, now: Q(In(e, [to_decimal(item) for item in t])))
    meanings["integer"] = Meaning(numbers_in, lambda e, t, now: Q(In(e, [to_decimal(item) for item in t])))
    meanings["money"] = Meaning(
        numbers_in, lambda e, t, now: _any(_money_within(e, to_decimal_valid(item)) for item in t)
    )
    return meanings


# --- Lists: tags (with SQL rows) and item lists (in memory only) ----------------------------------


def _tag_names(items: Iterable[Any]) -> set[str]:
    # (as_text is None exactly for None items)
    return {text.lower() for item in items if (text := as_text(item)) is not None}


def _tags_exist(where: Callable[[Any, Any], Q]) -> Callable[[Any, Any, datetime], Q]:
    def sql(rows_item: tuple[Any, Any], target: Any, now: datetime) -> Q:
        rows, item = rows_item
        return Q(Exists(rows.filter(where(item, target))))

    return sql


def _is_set_meanings() -> dict[str, Meaning]:
    def text_set(expr: Any) -> Q:
        return sql_present(expr) & ~Q(Exact(expr, ""))

    text = Meaning(lambda v, t, now: v is not None and as_text(v) != "", lambda e, t, now: text_set(e))
    scalar = Meaning(lambda v, t, now: v is not None, lambda e, t, now: sql_present(e))
    meanings = dict.fromkeys(("text", "choice"), text)
    meanings.update(dict.fromkeys(("number", "money", "integer", "boolean", "date", "datetime"), scalar))
    meanings["tags"] = Meaning(lambda items, t, now: len(items) > 0, lambda rows_item, t, now: Q(Exists(rows_item[0])))
    meanings["list"] = Meaning(lambda items, t, now: len(items) > 0, None)
    return meanings


def _quantifier(memory: Callable[[Iterable[bool]], bool], sql: Callable[[Any, Q], Q]) -> dict[str, Meaning]:
    """any / all / none over a list: `target` is the item predicate in memory, the item `Q` in SQL."""
    return {
        "tags": Meaning(
            lambda items, matches, now: memory(matches(item) for item in items),
            lambda rows_item, where, now: sql(rows_item[0], where),
        ),
        "list": Meaning(lambda items, matches, now: memory(matches(item) for item in items), None),
    }


# --- The table ------------------------------------------------------------------------------------


def _negated(meaning: Meaning) -> Meaning:
    memory, sql = meaning.memory, meaning.sql
    return Meaning(
        memory=lambda v, t, now: not memory(v, t, now),
        sql=None if sql is None else (lambda e, t, now: ~sql(e, t, now)),
    )


def _negation(name: str, label: str, of: Operator) -> Operator:
    """`name` holds exactly when `of` does not (for a field that is set: the NULL guard stays)."""
    meanings = {field_type: _negated(meaning) for field_type, meaning in of.meanings.items()}
    return Operator(name=name, label=label, takes=of.takes, meanings=meanings)


def _build() -> dict[str, Operator]:
    table: list[Operator] = []
    eq = Operator("eq", "is", VALUE, _eq_meanings())
    in_ = Operator("in", "is one of", VALUES, _in_meanings())
    contains_text = _text_meanings(lambda text, target: target.lower() in text, lambda e, t: Q(IContains(e, t)))
    contains = Operator(
        "contains",
        "contains",
        VALUE,
        {
            **contains_text,
            "tags": Meaning(
                lambda items, target, now: target.lower() in _tag_names(items),
                _tags_exist(lambda item, target: Q(IExact(item, target))),
            ),
        },
    )
    is_set = Operator("is_set", "is set", NOTHING, _is_set_meanings())
    table += [
        eq,
        _negation("ne", "is not", eq),
        Operator("gt", "is greater than", VALUE, _ordered(python.gt, GreaterThan, _money_above), "is after"),
        Operator(
            "gte", "is at least", VALUE, _ordered(python.ge, GreaterThanOrEqual, _money_at_least), "is on or after"
        ),
        Operator("lt", "is less than", VALUE, _ordered(python.lt, LessThan, _money_below), "is before"),
        Operator("lte", "is at most", VALUE, _ordered(python.le, LessThanOrEqual, _money_at_most), "is on or before"),
        in_,
        _negation("not_in", "is none of", in_),
        contains,
        _negation("not_contains", "does not contain", contains),
        Operator(
            "contains_any",
            "contains any of",
            VALUES,
            {
                **_text_meanings(
                    lambda text, targets: any(item.lower() in text for item in targets),
                    lambda e, targets: _any(Q(IContains(e, item)) for item in targets),
                ),
                "tags": Meaning(
                    lambda items, targets, now: bool(_tag_names(items) & {item.lower() for item in targets}),
                    _tags_exist(lambda item, targets: _any(Q(IExact(item, value)) for value in targets)),
                ),
            },
        ),
        Operator(
            "contains_words_any",
            "contains any of the words",
            VALUES,
            _text_meanings(
                words_match, lambda e, targets: Q(IRegex(Left(e, MAX_MATCHED_TEXT), words_pattern(targets)))
            ),
        ),
        Operator(
            "starts_with",
            "starts with",
            VALUE,
            _text_meanings(lambda text, target: text.startswith(target.lower()), lambda e, t: Q(IStartsWith(e, t))),
        ),
        Operator(
            "ends_with",
            "ends with",
            VALUE,
            _text_meanings(lambda text, target: text.endswith(target.lower()), lambda e, t: Q(IEndsWith(e, t))),
        ),
        is_set,
        _negation("is_not_set", "is not set", is_set),
        Operator(
            "any", "has any item where", WHERE, _quantifier(any, lambda rows, where: Q(Exists(rows.filter(where))))
        ),
        Operator(
            "all", "has every item where", WHERE, _quantifier(all, lambda rows, where: ~Q(Exists(rows.filter(~where))))
        ),
        Operator(
            "none",
            "has no item where",
            WHERE,
            _quantifier(lambda matches: not any(matches), lambda rows, where: ~Q(Exists(rows.filter(where)))),
        ),
    ]
    return {operator.name: operator for operator in table}


def _money_above(expr: Any, amount: Decimal) -> Q:
    return Q(GreaterThanOrEqual(expr, amount + HALF_CENT))


def _money_at_least(expr: Any, amount: Decimal) -> Q:
    return Q(GreaterThanOrEqual(expr, amount - HALF_CENT))


def _money_below(expr: Any, amount: Decimal) -> Q:
    return Q(LessThan(expr, amount - HALF_CENT))


def _money_at_most(expr: Any, amount: Decimal) -> Q:
    return Q(LessThan(expr, amount + HALF_CENT))


OPERATORS: dict[str, Operator] = _build()


def operator_get(name: str) -> Operator:
    """The operator named `name`; KeyError if the language has none."""
    return OPERATORS[name]


def operators_for_type(field_type: str) -> tuple[str, ...]:
    """The operators a field of this type offers, in the table's order."""
    return tuple(name for name, spec in OPERATORS.items() if field_type in spec.meanings)


def operators_describe() -> list[dict[str, Any]]:
    """The operator table as JSON (catalog API and builder): name, label, date label, what it takes."""
    return [
        {"name": spec.name, "label": spec.label, "date_label": spec.date_label or spec.label, "takes": spec.takes}
        for spec in OPERATORS.values()
    ]
