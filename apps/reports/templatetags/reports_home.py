"""`{% home_dashboard %}`: the reports dashboard on the console home (templates/console/home.html), for users who
may read reports (`reports.view_reports`); nothing for the others."""

from typing import Any

from django import template

from .. import selectors
from ..views import SECTIONS, VIEW_REPORTS

register = template.Library()


@register.inclusion_tag("reports/home_dashboard.html", takes_context=True)
def home_dashboard(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    if not user.has_perm(VIEW_REPORTS):
        return {"report": None}
    # The default period (the last 30 days against the 30 before): read from the daily rollups, not raw rows.
    report = selectors.dashboard(selectors.default_period())
    return {"report": report, "report_json": report.as_json(), "sections": SECTIONS}
