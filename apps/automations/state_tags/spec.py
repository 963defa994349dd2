"""What an active state tag says, what can change its answer, and how it moves with time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from loyalty_site.lib.conditions import catalog

from ..choices import WorkflowStatus
from ..definitions import STATE_TRIGGER
from ..models import Workflow

SOURCE_PREFIX = "state_tag:"
FILL_SUFFIX = ":fill"  # tags written by the recomputation on activation: no "entered"/"left" runs
TAG_ADDED = "customer.tag_added"
TAG_REMOVED = "customer.tag_removed"


class EveryCustomer:
    """A time dependency the catalog cannot narrow: the time pass recomputes the whole state tag."""


EVERY_CUSTOMER = EveryCustomer()


def _leaves(condition: Any) -> Iterator[dict[str, Any]]:
    """The field comparisons of a condition (quantifiers count as their list field; items are not walked)."""
    stack = [condition]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if "all" in node or "any" in node:
            stack.extend(node.get("all") or node.get("any") or [])
        elif "not" in node:
            stack.append(node["not"])
        elif "field" in node:
            yield node


def _field(name: str) -> catalog.FieldSpec | None:
    try:
        return catalog.field_get(name)
    except KeyError:
        return None


def _is_relative(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, dict) and ("days_ago" in item or "days_from_now" in item) for item in items)


@dataclass
class StateSpec:
    """One active state tag (its current version's definition)."""

    workflow: Workflow
    condition: dict[str, Any]
    tag: str
    group: str = ""
    rank: int = 0
    entered_steps: list[Any] = field(default_factory=list)
    left_steps: list[Any] = field(default_factory=list)

    @classmethod
    def of(cls, workflow: Workflow) -> StateSpec:
        version = workflow.current_version
        definition = version.definition if version is not None else workflow.definition
        block = definition.get("state") or {}
        return cls(
            workflow=workflow,
            condition=(definition.get("trigger") or {}).get("where") or {"all": []},
            tag=" ".join(str(block.get("tag") or "").split()),
            group=str(block.get("group") or ""),
            rank=int(block.get("rank") or 0),
            entered_steps=list(definition.get("steps") or []),
            left_steps=list(definition.get("left") or []),
        )

    @property
    def pk(self) -> int:
        return self.workflow.pk

    @property
    def source_ref(self) -> str:
        return f"{SOURCE_PREFIX}{self.workflow.pk}"

    @property
    def dynamic(self) -> bool:
        """The tag name is built per customer (`Pays in {{ customer.preferred_currency }}`)."""
        return "{{" in self.tag

    def changed_by(self) -> frozenset[str] | None:
        """The events that can change the answer for a customer; None: any event may (a field says so)."""
        names: set[str] = set()
        fields = [leaf["field"] for leaf in _leaves(self.condition)]
        if self.dynamic:
            fields += [piece.strip() for piece in self.tag.split("{{")[1:] for piece in [piece.split("}}")[0]]]
        for name in fields:
            spec = _field(name)
            if spec is None or spec.changed_by is None:
                return None
            names.update(spec.changed_by)
        return frozenset(names)

    def moves(self, *, since: datetime, now: datetime) -> Q | EveryCustomer | None:
        """
        The customers whose answer can have changed between `since` and `now` by time alone (a `Q`), None
        when nothing in the condition moves with the clock, EVERY_CUSTOMER when the catalog cannot say.
        """
        candidates: Q | None = None
        for leaf in _leaves(self.condition):
            window, value = leaf.get("window"), leaf.get("value")
            spec = _field(leaf["field"])
            timed = bool(window) or _is_relative(value)
            moved = None
            if spec is not None and spec.moves_with_time is not None:
                moved = spec.moves_with_time(since=since, now=now, window=window, op=leaf.get("op"), value=value)
            elif timed:
                return EVERY_CUSTOMER
            if moved is not None:
                candidates = moved if candidates is None else candidates | moved
        return candidates


def state_workflows_active() -> list[StateSpec]:
    """Every active state tag, by group then rank (highest first), then id (a batch of events: its snapshot)."""
    from ..engine.scope import batch_scope

    scope = batch_scope()
    if scope is not None:
        return scope.state_specs()
    workflows = Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE, current_version__isnull=False, current_version__trigger=STATE_TRIGGER
    ).select_related("current_version")
    specs = [StateSpec.of(workflow) for workflow in workflows]
    return sorted(specs, key=lambda spec: (spec.group, -spec.rank, spec.pk))


def state_units(specs: list[StateSpec]) -> list[list[StateSpec]]:
    """The units re-evaluated together: each exclusive group (highest rank first), each ungrouped state tag."""
    units: dict[str, list[StateSpec]] = {}
    for spec in specs:
        key = f"group:{spec.group}" if spec.group else f"tag:{spec.pk}"
        units.setdefault(key, []).append(spec)
    return list(units.values())


def triggers_listened() -> frozenset[str]:
    """The event names some active state tag needs to see (its condition's, and its tag changes for runs)."""
    names: set[str] = set()
    for spec in state_workflows_active():
        changed = spec.changed_by()
        if changed is None:
            return frozenset({"*"})
        names |= changed
        if spec.entered_steps:
            names.add(TAG_ADDED)
        if spec.left_steps:
            names.add(TAG_REMOVED)
    return frozenset(names)
