"""
`/healthz` for load balancers and monitors: database, task broker, worker heartbeat, outbox lag.

JSON, 200 when every check passes and 503 (with each check's status) when one fails. No
authentication and nothing sensitive: statuses, ages in seconds, counts and exception class names only
(never messages, which may hold host names or credentials).

- database: `SELECT 1` on the default connection.
- broker: django-q2's broker answers (`ping`) and how many tasks wait in it.
- worker: the django-q2 scheduler runs inside every `qcluster` and moves each schedule's `next_run`
  forward when it fires; the minute jobs declared by `setup_schedules` (outbox sweep, retries) therefore
  never lag more than about a minute while a worker is alive. The oldest overdue `next_run` is the
  heartbeat, for the ORM and the Redis broker alike.
- outbox: the age of the oldest trigger event (`DomainEvent`) not processed yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q.brokers import Broker, get_broker
from django_q.models import Schedule

from apps.customers.choices import DomainEventStatus
from apps.customers.models import DomainEvent

OK = "ok"
FAIL = "fail"

_broker: Broker | None = None


def _seconds_since(moment: datetime, now: datetime) -> int:
    return max(0, int((now - moment).total_seconds()))


def database_check() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": OK}


def broker_check() -> dict[str, Any]:
    global _broker  # one broker (and one Redis connection pool) per process, not one per probe
    if _broker is None:
        _broker = get_broker()
    kind = "redis" if settings.Q_CLUSTER.get("redis") else "orm"
    _broker.ping()
    return {"status": OK, "kind": kind, "queued": _broker.queue_size()}


def worker_check(now: datetime) -> dict[str, Any]:
    oldest_next_run = (
        Schedule.objects.exclude(repeats=0).order_by("next_run").values_list("next_run", flat=True).first()
    )
    if oldest_next_run is None:
        return {"status": FAIL, "reason": "no periodic schedules (run manage.py setup_schedules)"}
    overdue = _seconds_since(oldest_next_run, now)
    limit = settings.HEALTHZ_WORKER_MAX_OVERDUE_SECONDS
    if overdue > limit:
        return {"status": FAIL, "reason": "no qcluster has run the schedules", "overdue_seconds": overdue}
    return {"status": OK, "overdue_seconds": overdue}


def outbox_check(now: datetime) -> dict[str, Any]:
    oldest_pending = (
        DomainEvent.objects.filter(status=DomainEventStatus.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    lag = 0 if oldest_pending is None else _seconds_since(oldest_pending, now)
    limit = settings.HEALTHZ_OUTBOX_MAX_LAG_SECONDS
    if lag > limit:
        return {"status": FAIL, "reason": "trigger events wait too long", "lag_seconds": lag}
    return {"status": OK, "lag_seconds": lag}


def health_report() -> dict[str, Any]:
    now = timezone.now()
    checks = {
        "database": database_check,
        "broker": broker_check,
        "worker": lambda: worker_check(now),
        "outbox": lambda: outbox_check(now),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as error:  # a probe reports every failure instead of raising it
            results[name] = {"status": FAIL, "error": type(error).__name__}
    healthy = all(result["status"] == OK for result in results.values())
    return {"status": OK if healthy else FAIL, "checks": results}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == OK else 503)
