"""
What one batch of events shares (issue 12): the active workflows read once per batch instead of once per
event and per tag added, the claimed events with their customers read in one query, the objects their
contexts read (custom events, orders, ...) loaded once per model, and the engine's receipts written together
at the end. Outside a batch (one event a task, SQLite) nothing is cached and every reader queries as before.

A batch runs in one transaction, so a snapshot of the active workflows taken at its start is what a single
event's task would have read at its start: a workflow activated meanwhile does not see these events (as an
event recorded before the activation never does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..choices import WorkflowStatus
from ..models import Workflow

if TYPE_CHECKING:
    from apps.customers.models import DomainEvent

    from ..state_tags.spec import StateSpec


@dataclass
class BatchScope:
    """The shared reads of one batch; lives as long as the batch's transaction."""

    workflows: list[Workflow]
    events: dict[int, DomainEvent] = field(default_factory=dict)
    # model label -> pk -> row, for the objects the events' contexts read (custom_event_id, order_id, ...)
    objects: dict[str, dict[Any, Any]] = field(default_factory=dict)
    consumed: list[int] = field(default_factory=list)  # the events processed: their receipts, at the end
    _by_trigger: dict[str, list[Workflow]] = field(default_factory=dict)
    _state_specs: list[StateSpec] | None = None

    def listening(self, trigger: str) -> list[Workflow]:
        """The active workflows starting on `trigger`, highest message priority first (as the engine orders them)."""
        found = self._by_trigger.get(trigger)
        if found is None:
            found = [
                workflow
                for workflow in self.workflows
                if workflow.current_version is not None and workflow.current_version.trigger == trigger
            ]
            found.sort(key=lambda workflow: (-workflow.message_priority, workflow.name, workflow.pk))
            self._by_trigger[trigger] = found
        return found

    def state_specs(self) -> list[StateSpec]:
        """`state_workflows_active()` from the snapshot."""
        if self._state_specs is None:
            from ..definitions import STATE_TRIGGER
            from ..state_tags.spec import StateSpec

            specs = [StateSpec.of(workflow) for workflow in self.listening(STATE_TRIGGER)]
            self._state_specs = sorted(specs, key=lambda spec: (spec.group, -spec.rank, spec.pk))
        return self._state_specs


_current: ContextVar[BatchScope | None] = ContextVar("automations_batch_scope", default=None)


def batch_scope() -> BatchScope | None:
    """The batch being processed by this worker, if any."""
    return _current.get()


def workflows_active() -> list[Workflow]:
    """Every active workflow with its current version (one query)."""
    return list(
        Workflow.objects.filter(status=WorkflowStatus.ACTIVE, current_version__isnull=False).select_related(
            "current_version"
        )
    )


@contextmanager
def batch_scoped(workflows: list[Workflow]) -> Iterator[BatchScope]:
    scope = BatchScope(workflows=workflows)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
