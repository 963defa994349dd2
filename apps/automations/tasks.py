"""
django-q2 task entry points of the workflow engine. Tasks are thin: they take ids, re-fetch, call one engine
function and are safe to run twice. Everything is enqueued through `loyalty_site.lib.tasks.enqueue_on_commit`.
"""

from __future__ import annotations

from apps.customers import outbox
from loyalty_site.lib.tasks import retry_transient

from . import engine, services


def process_domain_event(event_id: int) -> None:
    """
    The engine's outbox consumer task: open and execute the runs of this event — on PostgreSQL, of a batch
    of pending events claimed together (`engine.domain_events_process_batch`; the event itself may be in
    another worker's batch). A transient database error is retried here with back-off (runs already opened
    are found, not opened twice; a failed batch rolled back whole); if it persists the task fails without
    the engine's receipt and the outbox sweep drives the event again.
    """
    retry_transient(
        lambda: engine.domain_events_process_batch(event_id=event_id), what=f"automations: event {event_id}"
    )


def events_drain() -> int:
    """
    The engine's drain (the outbox's coalescing on PostgreSQL): claim and process batches of pending events until
    none is left (`engine.domain_events_drain`, bounded in time; each batch retries a transient error itself).
    """
    return engine.domain_events_drain()


def run_execute(run_id: int) -> None:
    retry_transient(lambda: engine.run_execute(run_id=run_id), what=f"automations: run {run_id}")


def outbox_sweep() -> int:
    """Periodic: re-drive outbox events left pending (a lost enqueue, a failed task) for every consumer."""
    return outbox.outbox_sweep()


def runs_retry_due() -> int:
    return engine.runs_retry_due()


def runs_resume_due() -> int:
    return engine.runs_resume_due()


def runs_prune() -> int:
    return services.runs_prune()


def state_tag_recompute(workflow_id: int) -> int:
    """A state tag was activated: make its carriers (its group's) exactly its matchers now, set-based."""
    from .state_tags import state_tags_recompute

    return retry_transient(
        lambda: state_tags_recompute(workflow_id=workflow_id), what=f"automations: state tag {workflow_id}"
    )


def state_tags_time_pass() -> int:
    """Periodic: re-evaluate the candidates of every state tag whose condition moves with the clock."""
    from .state_tags import time_pass

    return len(retry_transient(time_pass, what="automations: state tags time pass"))


# Declared here, applied by the idempotent `setup_schedules` command (which also collects the
# PERIODIC_JOBS of every app's `tasks` module and of `apps.automations.bulk`).
PERIODIC_JOBS: list[dict[str, str]] = [
    {"name": "automations: outbox sweep", "func": "apps.automations.tasks.outbox_sweep", "cron": "* * * * *"},
    {"name": "automations: retry due runs", "func": "apps.automations.tasks.runs_retry_due", "cron": "* * * * *"},
    {"name": "automations: resume waiting runs", "func": "apps.automations.tasks.runs_resume_due", "cron": "* * * * *"},
    {"name": "automations: prune old runs", "func": "apps.automations.tasks.runs_prune", "cron": "40 2 * * *"},
    {
        "name": "automations: state tags time pass",
        "func": "apps.automations.tasks.state_tags_time_pass",
        "cron": "*/10 * * * *",
    },
]
