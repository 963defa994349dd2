"""
The report figures as JSON under /api/v1/reports/: the same `Report` the pages draw (figures with the
previous period, tables, charts). Token scope `reports`; permission `reports.view_reports`.
"""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.platform.permissions import API_PERMISSIONS

from .. import selectors
from ..lift import campaigns_report, workflows_report
from ..periods import lift_query_from, period_from

VIEW_REPORTS = "reports.view_reports"
PERIOD_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day (default: 29 days before end)"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive (default: today)"),
]


class ReportView(APIView):
    """One report for a date range; `start`/`end` are local days (TIME_ZONE)."""

    permission_classes = API_PERMISSIONS
    scope_family = "reports"
    action_permissions = {"get": [VIEW_REPORTS]}
    build: Callable[[selectors.Period], selectors.Report]

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=dict)
    def get(self, request: Request) -> Response:
        period = period_from(request.query_params)
        return Response(type(self).build(period).as_json())


class DashboardView(ReportView):
    build = staticmethod(selectors.dashboard)


class LoyaltyReportView(ReportView):
    build = staticmethod(selectors.loyalty_report)


class CampaignsReportView(ReportView):
    """Per campaign; with `campaign` its messages' attribution and its lift (treated vs holdout)."""

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter("campaign", OpenApiTypes.INT, description="A campaign id: adds its lift"),
            OpenApiParameter("window", OpenApiTypes.INT, description="Attribution window in days (1-90, default 7)"),
        ],
        responses=dict,
    )
    def get(self, request: Request) -> Response:
        period = period_from(request.query_params)
        query = lift_query_from(request.query_params, subject="campaign")
        query.raise_first()
        return Response(campaigns_report(period, query.subject, query.window).as_json())


class CohortsReportView(ReportView):
    build = staticmethod(selectors.cohorts_report)


class WorkflowsReportView(ReportView):
    """Runs per workflow; with `workflow` its branch split, conversions after the run and the lift."""

    @extend_schema(
        parameters=[
            *PERIOD_PARAMETERS,
            OpenApiParameter(
                "workflow", OpenApiTypes.INT, description="A workflow id: adds its split, conversions, lift"
            ),
            OpenApiParameter("window", OpenApiTypes.INT, description="Attribution window in days (1-90, default 7)"),
        ],
        responses=dict,
    )
    def get(self, request: Request) -> Response:
        period = period_from(request.query_params)
        query = lift_query_from(request.query_params, subject="workflow")
        query.raise_first()
        return Response(workflows_report(period, query.subject, query.window).as_json())
