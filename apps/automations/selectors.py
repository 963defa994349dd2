"""Reads of workflows and runs, with the joins the pages and the API need."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from .choices import RunStatus
from .models import Workflow, WorkflowRun, WorkflowRunStep, WorkflowVersion


def workflow_list() -> QuerySet[Workflow]:
    return Workflow.objects.select_related("current_version", "created_by", "updated_by")


def workflow_versions(*, workflow: Workflow) -> QuerySet[WorkflowVersion]:
    return (
        workflow.versions.select_related("created_by")
        .annotate(waiting_runs=Count("runs", filter=Q(runs__status=RunStatus.WAITING)))
        .order_by("-number")
    )


def waiting_runs_by_version(*, workflow: Workflow) -> dict[int, int]:
    """How many runs of the workflow wait, by version number (shown when editing the workflow)."""
    rows = (
        WorkflowRun.objects.filter(workflow=workflow, status=RunStatus.WAITING)
        .values("version__number")
        .annotate(n=Count("pk"))
        .order_by("version__number")
    )
    return {row["version__number"]: row["n"] for row in rows}


def run_list() -> QuerySet[WorkflowRun]:
    return WorkflowRun.objects.select_related("workflow", "version", "customer", "trigger_event").prefetch_related(
        Prefetch("steps", queryset=WorkflowRunStep.objects.order_by("pk"))
    )


def state_tag_carriers(*, workflows: list[Workflow]) -> dict[int, int]:
    """
    For each state-tag workflow among `workflows`, how many customers carry its tag now (its current
    version's tag; a tag built per customer counts the tags it wrote). One indexed count per state tag.
    """
    from apps.tagging.models import CustomerTag

    from .definitions import STATE_TRIGGER
    from .state_tags.spec import FILL_SUFFIX, StateSpec

    counts: dict[int, int] = {}
    for workflow in workflows:
        if workflow.trigger != STATE_TRIGGER:
            continue
        spec = StateSpec.of(workflow)
        rows = CustomerTag.objects.all()
        if spec.dynamic:
            rows = rows.filter(source_ref__in=[spec.source_ref, spec.source_ref + FILL_SUFFIX])
        else:
            rows = rows.filter(tag__name__iexact=spec.tag)
        counts[workflow.pk] = rows.count()
    return counts


def state_tag_summary(workflow: Workflow) -> dict | None:
    """A state tag's tag, exclusive group and current carriers (the builder's header); None for other kinds."""
    if workflow.kind != "state":
        return None
    from .state_tags.spec import StateSpec

    spec = StateSpec.of(workflow)
    return {
        "tag": spec.tag,
        "group": spec.group,
        "rank": spec.rank,
        "carriers": state_tag_carriers(workflows=[workflow]).get(workflow.pk, 0),
    }


def installed_by_template() -> dict[str, list[dict]]:
    """The installed workflows of each gallery template, with the carriers of the state tags among them."""
    workflows = list(Workflow.objects.exclude(template="").select_related("current_version").order_by("pk"))
    carriers = state_tag_carriers(workflows=workflows)
    installed: dict[str, list[dict]] = {}
    for workflow in workflows:
        installed.setdefault(workflow.template, []).append(
            {"workflow": workflow, "carriers": carriers.get(workflow.pk)}
        )
    return installed
