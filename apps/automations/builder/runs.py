"""Run history (global and per workflow), the run page with its steps, and replay of dead runs."""

from __future__ import annotations

import csv
import json
from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from apps.automations import services
from apps.automations.builder import boot as boot_data
from apps.automations.builder.describe import bulk_story, step_story
from apps.automations.builder.views import CHANGE, VIEW, as_id, can, page_context, query_text
from apps.automations.choices import RunStatus
from apps.automations.models import Workflow, WorkflowRun
from apps.tagging.models import TagAudit

RUN_STATUSES = [status.value for status in RunStatus]
STEP_COLOURS: dict[str, str] = {
    RunStatus.SUCCEEDED: "is-green",
    RunStatus.FAILED: "is-red",
    RunStatus.DEAD: "is-red",
    RunStatus.SKIPPED: "is-grey",
    RunStatus.WAITING: "is-amber",
    RunStatus.RUNNING: "is-amber",
    RunStatus.PENDING: "is-grey",
}


def _day_bound(value: str, *, end: bool) -> datetime | None:
    try:
        day = parse_date(value or "")
    except ValueError:  # well formed but not a date: 2026-02-30
        return None
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


@can(VIEW)
def run_list(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    workflow = get_object_or_404(Workflow, pk=pk) if pk else None
    runs = WorkflowRun.objects.select_related("workflow", "customer", "version", "trigger_event").order_by(
        "-created_at", "-pk"
    )
    if workflow:
        runs = runs.filter(workflow=workflow)
    status = request.GET.get("status", "")
    customer = query_text(request, "customer")
    since = _day_bound(request.GET.get("since", ""), end=False)
    until = _day_bound(request.GET.get("until", ""), end=True)
    if status in RUN_STATUSES:
        runs = runs.filter(status=status)
    if customer:
        customer_id = as_id(customer)
        runs = (
            runs.filter(customer_id=customer_id)
            if customer_id is not None
            else runs.filter(customer__email__icontains=customer)
        )
    if since:
        runs = runs.filter(created_at__gte=since)
    if until:
        runs = runs.filter(created_at__lte=until)
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    return render(
        request,
        "automations/builder/run_list.html",
        page_context(
            request,
            title=f"Runs of {workflow.name}" if workflow else "Run history",
            section="runs",
            workflow=workflow,
            page_obj=page,
            statuses=RUN_STATUSES,
            status=status,
            customer=customer,
            since=request.GET.get("since", ""),
            until=request.GET.get("until", ""),
            querystring=filters.urlencode(),
        ),
    )


def _pretty(value: Any) -> str:
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def trigger_currencies(payload: Any) -> dict[str, str]:
    """The currencies of the order / cart / draft order a run was triggered by, to show its money values."""
    from apps.customers.models import Cart, DraftOrder, Order

    payload = payload if isinstance(payload, dict) else {}
    found = {}
    for key, model, scope in (
        ("order_id", Order, "order"),
        ("cart_id", Cart, "cart"),
        ("draft_order_id", DraftOrder, "draft_order"),
    ):
        if isinstance(payload.get(key), int):
            currency = model.objects.filter(pk=payload[key]).values_list("currency", flat=True).first()
            if currency:
                found[scope] = currency
    return found


# The counters of a bulk run, with what each means (shown as the page's legend).
FIGURES = [
    ("Matched", "matched", "customers in the audience when the run started"),
    ("Processed", "processed", "customers the steps have gone over so far"),
    ("Errors", "errors", "customers whose steps failed (see the steps below)"),
    ("Chunks done", "chunks_done", "batches of customers finished"),
    ("Chunks", "chunks_total", "batches in the whole run"),
]
TOUCHED_PAGE_SIZE = 50


def touched_rows(run: WorkflowRun, query: str) -> Any:
    """The tag changes a bulk run made (one row per customer and tag added or removed), newest first."""
    rows = TagAudit.objects.filter(source_ref=f"bulk_run:{run.pk}").select_related("customer")
    for word in query.split()[:4]:
        rows = rows.filter(
            Q(customer__email__icontains=word)
            | Q(customer__first_name__icontains=word)
            | Q(customer__last_name__icontains=word)
            | Q(customer__external_id=word)
            | Q(tag_name__iexact=word)
        )
    return rows.order_by("-created_at", "-pk")


def touched_page(request: HttpRequest, run: WorkflowRun) -> Any:
    return Paginator(touched_rows(run, query_text(request, "q")), TOUCHED_PAGE_SIZE).get_page(request.GET.get("page"))


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formula injection in a spreadsheet


class _Echo:
    def write(self, value: str) -> str:
        return value


@can(VIEW)
def run_touched_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every customer a bulk run tagged or untagged, as CSV (streamed: any number of rows)."""
    run = get_object_or_404(WorkflowRun, pk=pk, kind="bulk")
    writer = csv.writer(_Echo())
    rows = touched_rows(run, query_text(request, "q")).values_list(
        "customer_id", "customer__external_id", "customer__email", "action", "tag_name", "created_at"
    )

    def lines() -> Any:
        yield writer.writerow(["customer_id", "external_id", "email", "action", "tag", "at"])
        for row in rows.iterator(chunk_size=2000):
            yield writer.writerow([_csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="bulk-run-{run.pk}-customers.csv"'
    return response


@can(VIEW)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(
        WorkflowRun.objects.select_related("workflow", "customer", "version", "trigger_event"), pk=pk
    )
    actions = {spec["name"]: spec["label"] for spec in boot_data.catalog_payload()["actions"]}
    currencies = trigger_currencies(run.trigger_event.payload if run.trigger_event else {})
    steps = [
        {
            "step": step,
            "story": step_story(step, actions, currencies),
            "colour": STEP_COLOURS.get(step.status, "is-grey"),
            "inputs": _pretty(getattr(step, "inputs", None)),
            "outcome": _pretty(getattr(step, "outcome", None)),
        }
        for step in run.steps.order_by("pk")
    ]
    progress = run.progress if isinstance(getattr(run, "progress", None), dict) else {}
    definition = run.version.definition if run.version else run.workflow.definition
    bulk_rows = bulk_story(definition, progress, actions) if run.kind == "bulk" else []
    return render(
        request,
        "automations/builder/run_detail.html",
        page_context(
            request,
            title=f"Run #{run.pk}",
            section="runs",
            run=run,
            steps=steps,
            colour=STEP_COLOURS.get(run.status, "is-grey"),
            progress=_pretty(progress),
            figures=[(label, progress.get(key), legend) for label, key, legend in FIGURES if key in progress],
            refreshing=run.status in {RunStatus.PENDING, RunStatus.RUNNING},
            touched=touched_page(request, run) if run.kind == "bulk" else None,
            touched_query=query_text(request, "q") if run.kind == "bulk" else "",
            bulk_rows=bulk_rows,
            context_json=_pretty(getattr(run, "context", None)),
            can_replay=run.status in {RunStatus.DEAD, RunStatus.FAILED} and request.user.has_perm(CHANGE),
        ),
    )


@can(CHANGE)
@require_POST
def run_replay(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(WorkflowRun, pk=pk)
    try:
        services.run_replay(run=run, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(item["message"] for item in boot_data.error_list(error)))
    else:
        messages.success(request, f"Run #{run.pk} is queued again.")
    return redirect("automations:run_detail", pk=run.pk)
