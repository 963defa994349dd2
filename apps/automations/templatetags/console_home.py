"""`{% home_overview %}`: the console home's live figures, recent runs and changes (templates/console/home.html)."""

from typing import Any

from django import template

from apps.automations.console.home import home_figures, quick_actions, recent_changes, recent_runs

register = template.Library()


@register.inclusion_tag("console/home_overview.html", takes_context=True)
def home_overview(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    return {
        "tiles": home_figures(user),
        "runs": recent_runs(user),
        "changes": recent_changes(user),
        "actions": quick_actions(user),
    }
