"""
Marketer pages under /admin/reports/: the dashboard and the reports, each with a date range, charts
(Chart.js, installed by scripts/bootstrap), a table view of every chart and a CSV export per table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from apps.automations.models import Workflow
from apps.campaigns.models import Campaign
from loyalty_site.lib.errors import DomainError

from . import selectors
from .exports import csv_filename, table_csv
from .lift import campaigns_report, workflows_report
from .periods import lift_query_from, period_from

VIEW_REPORTS = "reports.view_reports"
SECTIONS = [
    ("dashboard", "Dashboard"),
    ("loyalty", "Loyalty"),
    ("campaigns", "Campaigns"),
    ("workflows", "Workflows"),
    ("cohorts", "Cohorts"),
]


def report_page(
    request: HttpRequest,
    key: str,
    build: Callable[[selectors.Period], selectors.Report],
    *,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """Render a report, or one of its tables as CSV (`?csv=<table>`)."""
    error = ""
    try:
        period = period_from(request.GET)
    except DomainError as refused:
        error = refused.message
        period = selectors.default_period()
    report = build(period)
    wanted = request.GET.get("csv", "")[:64]
    if wanted:
        if error:
            return HttpResponseBadRequest(error, content_type="text/plain")
        table = report.table(wanted)
        if table is None:
            return HttpResponseBadRequest("csv: unknown table.", content_type="text/plain")
        response = HttpResponse(table_csv(report, table), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{csv_filename(report, table)}"'
        return response
    context = {
        "title": report.title if key == "dashboard" else f"{report.title} report",
        "report": report,
        "report_json": report.as_json(),
        "section": key,
        "sections": SECTIONS,
        "error": error,
        **(extra or {}),
    }
    return render(request, "reports/report.html", context, status=400 if error else 200)


@staff_member_required
@permission_required(VIEW_REPORTS, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    return report_page(request, "dashboard", selectors.dashboard)


@staff_member_required
@permission_required(VIEW_REPORTS, raise_exception=True)
def loyalty(request: HttpRequest) -> HttpResponse:
    return report_page(request, "loyalty", selectors.loyalty_report)


def lift_page(
    request: HttpRequest,
    key: str,
    *,
    subject: str,
    build: Callable[[selectors.Period, Any, int], selectors.Report],
    choices: Any,
) -> HttpResponse:
    """
    The workflows and campaigns reports: `?<subject>=<id>` and `?window=` read by the one shared parser (every
    problem → one plain-text 400), then the report page with the chosen subject and window kept in its links.
    """
    query = lift_query_from(request.GET, subject=subject)
    if query.problems:
        return HttpResponseBadRequest(" ".join(p.message for p in query.problems), content_type="text/plain")
    chosen, window = query.subject, query.window
    return report_page(
        request,
        key,
        lambda period: build(period, chosen, window),
        extra={
            "extra_inputs": [*([(subject, chosen.pk)] if chosen else []), ("window", window)],
            subject: chosen,
            "window": window,
            f"{subject}_choices": choices.order_by("name").values_list("pk", "name")[:500],
        },
    )


@staff_member_required
@permission_required(VIEW_REPORTS, raise_exception=True)
def campaigns(request: HttpRequest) -> HttpResponse:
    """Per campaign; with `?campaign=<id>` its lift (treated vs holdout) within `?window=` days."""
    return lift_page(request, "campaigns", subject="campaign", build=campaigns_report, choices=Campaign.objects)


@staff_member_required
@permission_required(VIEW_REPORTS, raise_exception=True)
def cohorts(request: HttpRequest) -> HttpResponse:
    return report_page(request, "cohorts", selectors.cohorts_report)


@staff_member_required
@permission_required(VIEW_REPORTS, raise_exception=True)
def workflows(request: HttpRequest) -> HttpResponse:
    """Runs per workflow; with `?workflow=<id>` its branch split, conversions within `?window=` days and lift."""
    return lift_page(request, "workflows", subject="workflow", build=workflows_report, choices=Workflow.objects)
