"""
django-q2 task entry points. Tasks are thin: they take ids, re-fetch, call one engine function and are
safe to run twice. Everything is enqueued through `enqueue`, which defers to `transaction.on_commit`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction


def enqueue(func_path: str, *args: Any, **kwargs: Any) -> None:
    """Enqueue `func_path(*args)` on the django-q2 queue once the current transaction commits."""

    def _send() -> None:
        from django_q.tasks import async_task

        async_task(func_path, *args, **kwargs)

    transaction.on_commit(_send, robust=True)


def process_domain_event(event_id: int) -> None:
    from .engine import domain_event_process

    domain_event_process(event_id=event_id)


def run_execute(run_id: int) -> None:
    from .engine import run_execute as execute

    execute(run_id=run_id)


def outbox_sweep() -> int:
    """Periodic: re-enqueue DomainEvents left pending more than a minute (a lost enqueue)."""
    from .engine import outbox_sweep as sweep

    return sweep()


def runs_retry_due() -> int:
    from .engine import runs_retry_due as retry

    return retry()


def runs_resume_due() -> int:
    from .engine import runs_resume_due as resume

    return resume()


def runs_prune() -> int:
    from .services import runs_prune as prune

    return prune()


# Declared here, applied by the idempotent `setup_schedules` command (which also collects the
# PERIODIC_JOBS of every app's `tasks` module and of `apps.automations.bulk`).
PERIODIC_JOBS: list[dict[str, str]] = [
    {"name": "automations: outbox sweep", "func": "apps.automations.tasks.outbox_sweep", "cron": "* * * * *"},
    {"name": "automations: retry due runs", "func": "apps.automations.tasks.runs_retry_due", "cron": "* * * * *"},
    {"name": "automations: resume waiting runs", "func": "apps.automations.tasks.runs_resume_due", "cron": "* * * * *"},
    {"name": "automations: prune old runs", "func": "apps.automations.tasks.runs_prune", "cron": "40 2 * * *"},
]
