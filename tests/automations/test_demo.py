"""The demo installs a few gallery templates active, with real runs; no template is pre-installed as a draft."""

from io import StringIO

import pytest
from django.core.management import call_command

from apps.automations.choices import RunKind, WorkflowStatus
from apps.automations.demo import ACTIVE_EXAMPLES
from apps.automations.gallery import TEMPLATES
from apps.automations.models import Workflow, WorkflowRun

pytestmark = pytest.mark.django_db


def test_the_demo_installs_active_examples_with_real_runs_and_no_drafts(settings, django_capture_on_commit_callbacks):
    settings.TASKS_SYNC = True

    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", "--no-admin", stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", "--no-admin", stdout=StringIO())  # idempotent

    workflows = dict(Workflow.objects.values_list("name", "status"))
    assert workflows == {TEMPLATES[key].name: WorkflowStatus.ACTIVE for key in ACTIVE_EXAMPLES}
    runs = WorkflowRun.objects.exclude(kind=RunKind.TEST)
    # the inactive high-value example is a state tag now: activation computed it, no bulk run is started
    assert not runs.filter(kind=RunKind.BULK).exists()
    assert runs.filter(kind=RunKind.EVENT, status="succeeded").exists()
