"""
The field catalog: the one registry of every field the condition language, the builder, dynamic
parameters and audiences can use.

Each app registers its own fields from its `fields.py` (imported by its AppConfig.ready). A field
knows how to be read in memory (`read(context, **kwargs)`, for one event) and, when it can, how to
be compiled to SQL over Customer rows (`compile(now=..., window=..., op=..., value=..., item=...)`
returning a value expression, or a `Q` when the field applies the operator itself). List fields name
the scope of their items (`item_scope`); tag-like lists over customers also say which rows hold their
items (`items`), which lets the compiler turn `contains` and the any/all/none quantifiers into
`EXISTS` subqueries.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .operators import OPERATORS, operators_describe, operators_for_type

FIELD_TYPES = ("text", "number", "money", "integer", "boolean", "date", "datetime", "tags", "list", "choice")


@dataclass(frozen=True)
class FieldSpec:
    """One field of the condition language: its type, where it is read from and how to read/compile it."""

    name: str
    type: str
    label: str
    scope: str
    read: Callable[..., Any]
    description: str = ""
    operators: tuple[str, ...] = ()
    compile: Callable[..., Any] | None = None
    supports_window: bool = False
    # The units a window may be given in (velocity fields of fraud rules count minutes and hours too).
    window_units: tuple[str, ...] = ("days",)
    item_scope: str | None = None
    suggest: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    example: Any = None
    # For tag-like lists over customers: `items(now=...) -> (correlated queryset, item value expression)`.
    items: Callable[..., tuple[Any, Any]] | None = None
    # For a wildcard field (`customer.attributes.*`): the concrete key, passed to read/compile as `key=`.
    key: str | None = None
    # For a per-customer aggregate over rows (a windowed count or sum): `figure(now=..., window=..., key=...)
    # -> figures.Figure | None`. When it returns a Figure, both evaluators read it (one query per customer in
    # memory, one grouped query per batch, set based in SQL) instead of `read` / `compile`.
    figure: Callable[..., Any] | None = None
    # Which triggers (outbox event names) can change the field's value for a customer; None: unknown (any
    # event may). State tags re-evaluate a customer on exactly these events.
    changed_by: tuple[str, ...] | None = None
    # For a value that also moves with the clock (a window slides, a relative date passes):
    # `moves_with_time(since=, now=, window=, op=, value=)` -> a `Q` over customers containing every customer
    # whose answer can have changed between `since` and `now` (None: this use of the field does not move).
    moves_with_time: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"Field {self.name}: unknown type {self.type!r}")
        if not self.operators:
            object.__setattr__(self, "operators", operators_for_type(self.type))
        unknown = [op for op in self.operators if self.type not in getattr(OPERATORS.get(op), "meanings", {})]
        if unknown:
            raise ValueError(f"Field {self.name}: no operator {', '.join(unknown)} for a {self.type} field")
        if self.type == "list" and not self.item_scope:
            raise ValueError(f"Field {self.name}: a list field needs an item_scope")
        if self.type == "tags" and not self.item_scope:
            object.__setattr__(self, "item_scope", "tag")
        object.__setattr__(self, "choices", tuple(tuple(choice) for choice in self.choices))

    @property
    def compilable(self) -> bool:
        return self.compile is not None or self.figure is not None or (self.type == "tags" and self.items is not None)

    def figure_for(self, *, now: Any, window: dict | None) -> Any:
        """The field's Figure for this window (None: the field is read by `read` / `compile`)."""
        if self.figure is None:
            return None
        kwargs: dict[str, Any] = {"now": now, "window": window}
        if self.key is not None:
            kwargs["key"] = self.key
        return self.figure(**kwargs)

    @property
    def is_wildcard(self) -> bool:
        return self.name.endswith(".*")


_fields: dict[str, FieldSpec] = {}
_lock = threading.Lock()
WILDCARD_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def register_field(spec: FieldSpec) -> None:
    """Register a field; registering the same name again replaces it (module reloads in tests)."""
    with _lock:
        _fields[spec.name] = spec


def field_get(name: str) -> FieldSpec:
    """The field named `name`; wildcard fields (`event.properties.*`) resolve any safe key. KeyError if unknown."""
    spec = _fields.get(name)
    if spec is not None and not spec.is_wildcard:
        return spec
    prefix, _, key = name.rpartition(".")
    wildcard = _fields.get(f"{prefix}.*") if prefix else None
    if wildcard is None or not WILDCARD_KEY.match(key):
        raise KeyError(name)
    return dataclasses.replace(wildcard, name=name, key=key, label=f"{wildcard.label}: {key}")


def fields_all() -> list[FieldSpec]:
    return sorted(_fields.values(), key=lambda spec: (spec.scope, spec.name))


def scopes_all() -> frozenset[str]:
    """Every scope some field is read from."""
    return frozenset(spec.scope for spec in list(_fields.values()))


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    return str(value)


def catalog_describe() -> dict[str, Any]:
    """The catalog as JSON for `/api/v1/workflow-fields/` and the builder."""
    return {
        "fields": [
            {
                "name": spec.name,
                "type": spec.type,
                "label": spec.label,
                "description": spec.description,
                "scope": spec.scope,
                "operators": list(spec.operators),
                "window": spec.supports_window,
                "window_units": list(spec.window_units),
                "item_scope": spec.item_scope,
                "suggest": spec.suggest,
                "choices": [list(choice) for choice in spec.choices],
                "example": _json_safe(spec.example),
                "audience": spec.compilable,
                "wildcard": spec.is_wildcard,
                "changed_by": list(spec.changed_by) if spec.changed_by is not None else None,
            }
            for spec in fields_all()
        ],
        "operators": {name: spec.label for name, spec in OPERATORS.items()},
        "operators_by_type": {kind: list(operators_for_type(kind)) for kind in FIELD_TYPES},
        "operator_specs": operators_describe(),
    }


# --- Built-in item field -----------------------------------------------------------------------------
# Quantifiers over tag-like lists (`customer.tags`, `product.tags`, `customer.currencies`) test each
# item through `tag.name`.


def _read_tag(context: Any, **kwargs: Any) -> Any:
    return getattr(context, "tag", None)


def _compile_tag(*, item: Any = None, **kwargs: Any) -> Any:
    if item is None:
        raise ValueError("tag.name compiles only inside a quantifier over a tag list")
    return item


register_field(
    FieldSpec(
        name="tag.name",
        type="text",
        label="Tag",
        scope="tag",
        description="One item of a tag list, inside an any/all/none quantifier.",
        read=_read_tag,
        compile=_compile_tag,
        example="VIP",
    )
)
