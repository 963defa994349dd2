"""Start-up checks of the task queue configuration the engine relies on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def q_cluster_check(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """django-q2 must time a task out before it re-delivers it, and cap its attempts."""
    config = getattr(settings, "Q_CLUSTER", None) or {}
    problems: list[Any] = []
    timeout, retry = config.get("timeout"), config.get("retry")
    if not timeout or not retry or int(timeout) >= int(retry):
        problems.append(
            Error(
                "Q_CLUSTER 'timeout' must be set and smaller than 'retry'.",
                hint="Otherwise a slow task is re-delivered while it still runs and its effects may run twice.",
                id="automations.E001",
            )
        )
    if not config.get("max_attempts"):
        problems.append(
            Error(
                "Q_CLUSTER 'max_attempts' must be set (> 0).",
                hint="0 means a failing task is retried for ever.",
                id="automations.E002",
            )
        )
    if getattr(settings, "AUTOMATIONS_MAX_CHAIN_DEPTH", 0) < 1:
        problems.append(
            Warning("AUTOMATIONS_MAX_CHAIN_DEPTH below 1 stops every chained workflow.", id="automations.W001")
        )
    return problems
