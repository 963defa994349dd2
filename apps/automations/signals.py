"""
The workflow engine as an outbox consumer (`apps.customers.outbox`). It consumes every event: after commit
the outbox enqueues `tasks.process_domain_event(event_id)` — or, when no active workflow listens to that
trigger, records the engine's receipt at once (one indexed query instead of a queue round trip; a workflow
activated later does not see earlier events either way). On PostgreSQL with batches the per-event task is
coalesced into the drain `tasks.events_drain` (one queued at a time; see the outbox module). The domain signals
themselves only announce.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from apps.customers.outbox import OutboxConsumer, outbox_consumer_register
from loyalty_site.lib.hot_queries import ExistsCompiled

from .choices import WorkflowStatus
from .models import Workflow

CONSUMER = "automations"

# Asked on every trigger-worthy write (each single-event POST): compiled once, run with the trigger's name.
_workflow_listens = ExistsCompiled(
    lambda trigger: Workflow.objects.filter(status=WorkflowStatus.ACTIVE, current_version__trigger=trigger), arity=1
)


def trigger_listened(trigger: str) -> bool:
    """
    True when an active workflow's current version starts on `trigger`, or an active state tag must see such
    events (they can change its answer, or they start its "entered"/"left" steps).
    """
    from .engine.scope import batch_scope

    scope = batch_scope()
    if scope is not None:  # inside a batch of events: its snapshot of the active workflows, no query
        if scope.listening(trigger):
            return True
    elif _workflow_listens(trigger):
        return True
    from .state_tags import triggers_listened

    needed = triggers_listened()
    return trigger in needed or "*" in needed


def receivers_connect() -> None:
    outbox_consumer_register(
        OutboxConsumer(
            name=CONSUMER,
            task="apps.automations.tasks.process_domain_event",
            events=None,
            listens=trigger_listened,
            # On PostgreSQL with batches the events go to one drain task at a time, not one task each.
            drain="apps.automations.tasks.events_drain",
            drains=_drains,
        )
    )


def _drains() -> bool:
    return connection.vendor == "postgresql" and settings.AUTOMATIONS_EVENT_BATCH > 1
