"""The objects a condition is evaluated against, and the shapes errors and results take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ConditionError:
    """One problem in a condition, with the JSON path of the offending node (`steps[2].if.all[1].op`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConditionInvalid(ValueError):
    """Raised by the evaluators when handed a condition that does not validate."""

    def __init__(self, errors: list[ConditionError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass
class EvaluationContext:
    """
    Everything a condition can read for one event. `cache` is shared by the contexts derived for
    list items, so one evaluation never queries the same figure twice.
    """

    customer: Any | None
    now: datetime
    order: Any | None = None
    line: Any | None = None
    product: Any | None = None
    cart: Any | None = None
    draft_order: Any | None = None
    custom_event: Any | None = None
    store: Any | None = None
    location: dict | None = None
    extra: dict = field(default_factory=dict)
    tag: str | None = None
    cache: dict = field(default_factory=dict, repr=False)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


@dataclass
class Evaluation:
    """The outcome of one evaluation, with the field values read, by JSON path, for run traces."""

    result: bool
    values: dict[str, Any] = field(default_factory=dict)
