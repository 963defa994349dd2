"""Start a bulk run of a bulk-activity workflow now; with --wait, process its chunks in this process."""

import time

from django.core.management.base import BaseCommand, CommandError

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

    def handle(self, *args, workflow_id: int, wait: bool, **options):
        from apps.automations.models import Workflow

        workflow = Workflow.objects.filter(pk=workflow_id).first()
        if workflow is None:
            raise CommandError(f"No workflow #{workflow_id}.")
        try:
            run = bulk.bulk_run_start(workflow=workflow, user=None, enqueue=not wait)
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"bulk run #{run.pk} started ({run.progress['chunks_total']} chunks)")
        if not wait:
            self.stdout.write("The worker (manage.py qcluster) processes it; follow it in the admin or the API.")
            return
        started = time.perf_counter()
        for index in range(run.progress["chunks_total"]):
            bulk.bulk_chunk_process(run_id=run.pk, index=index)
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
