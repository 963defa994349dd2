"""Start a bulk run of a bulk-activity workflow now; with --wait, process its chunks in this process."""

import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections

from apps.automations import bulk
from loyalty_site.lib.errors import DomainError


class Command(BaseCommand):
    help = "Run a bulk customer activity workflow over its audience now."
    # An operation, not a deploy: the full system checks cost about a second of start-up on every run
    # (`manage.py check` runs them; `scripts/run` runs them before serving).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("workflow_id", type=int)
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Process the chunks here (no worker needed) and print the final progress.",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=None,
            help=(
                "With --wait: chunks processed at once, each thread with its own database connection (PostgreSQL; "
                "a chunk's work is set-based SQL, so the database does it in parallel). Default: as many as the "
                "workers would run (Q_WORKERS, 2 by default); always 1 on SQLite."
            ),
        )

    def handle(self, *args, workflow_id: int, wait: bool, jobs: int | None = None, **options):
        from apps.automations.models import Workflow

        workflow = Workflow.objects.filter(pk=workflow_id).first()
        if workflow is None:
            raise CommandError(f"No workflow #{workflow_id}.")
        jobs = jobs_for(jobs)  # refused before anything starts
        try:
            run = bulk.bulk_run_start(workflow=workflow, user=None, enqueue=not wait)
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"bulk run #{run.pk} started ({run.progress['chunks_total']} chunks)")
        if not wait:
            self.stdout.write("The worker (manage.py qcluster) processes it; follow it in the admin or the API.")
            return
        started = time.perf_counter()
        _chunks_process(run.pk, run.progress["chunks_total"], jobs)
        elapsed = time.perf_counter() - started
        run.refresh_from_db()
        payload = bulk.bulk_run_payload(run)
        progress = payload["progress"]
        self.stdout.write(
            f"bulk run #{run.pk} {run.status}: matched {progress['matched']}, processed {progress['processed']}, "
            f"errors {progress['errors']} ({elapsed:.1f} s)"
        )
        for step_id, branch in progress["branches"].items():
            self.stdout.write(f"  {step_id}: then {branch['then']}, else {branch['else']}")
        for step_id, count in progress["actions"].items():
            self.stdout.write(f"  {step_id}: {count} affected")


def jobs_for(asked: int | None) -> int:
    """Chunks processed at once: what was asked, else what the workers would run at once; 1 on SQLite."""
    if asked is not None and asked < 1:
        raise CommandError("--jobs must be at least 1.")
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1  # SQLite: one writer; inside a caller's transaction: other connections could not see its rows
    if asked is None:  # the same parallelism as the queued run: Q_WORKERS processes, each a chunk at a time
        return max(1, int(settings.Q_CLUSTER.get("workers", 1)))
    return asked


def _chunks_process(run_id: int, chunks_total: int, jobs: int) -> None:
    """Every chunk of the run, in order, by `jobs` threads taking the next chunk as each finishes one."""
    if jobs == 1:
        for index in range(chunks_total):
            bulk.bulk_chunk_process(run_id=run_id, index=index)
        return
    indexes = iter(range(chunks_total))
    taking = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                with taking:
                    index = next(indexes, None)
                if index is None:
                    return
                bulk.bulk_chunk_process(run_id=run_id, index=index)
        except BaseException as error:  # a failed chunk is counted by bulk_chunk_process; this is anything else
            failures.append(error)
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=work, name=f"run_workflow-{n}") for n in range(min(jobs, chunks_total))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
