"""/healthz: database, broker, worker heartbeat (schedule ticks), outbox lag; 200 or 503, no auth."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import OperationalError, connection
from django_q.models import Schedule

from apps.customers.choices import DomainEventStatus
from apps.customers.models import DomainEvent

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def schedules(frozen):
    call_command("setup_schedules", stdout=None)
    # As a live qcluster leaves them: every job's next run is due within the coming minute.
    Schedule.objects.update(next_run=NOW + timedelta(seconds=30))
    return Schedule.objects.all()


def test_healthy_install_answers_200_with_every_check(client, schedules):
    DomainEvent.objects.create(
        name="order.created", status=DomainEventStatus.PENDING, created_at=NOW - timedelta(seconds=42)
    )
    DomainEvent.objects.create(
        name="order.created", status=DomainEventStatus.PROCESSED, created_at=NOW - timedelta(days=3)
    )

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "broker": {"status": "ok", "kind": "orm", "queued": 0},
            "worker": {"status": "ok", "overdue_seconds": 0},
            "outbox": {"status": "ok", "lag_seconds": 42},
        },
    }
    assert "sessionid" not in response.cookies


def test_stopped_worker_is_503_with_how_overdue_the_schedules_are(client, schedules):
    Schedule.objects.filter(name="automations: outbox sweep").update(next_run=NOW - timedelta(seconds=301))

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["worker"] == {
        "status": "fail",
        "reason": "no qcluster has run the schedules",
        "overdue_seconds": 301,
    }
    assert body["checks"]["database"] == {"status": "ok"}


def test_install_without_schedules_is_503(client, frozen):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == {
        "status": "fail",
        "reason": "no periodic schedules (run manage.py setup_schedules)",
    }


def test_outbox_lag_past_the_limit_is_503(client, schedules, settings):
    settings.HEALTHZ_OUTBOX_MAX_LAG_SECONDS = 120
    DomainEvent.objects.create(
        name="order.created", status=DomainEventStatus.PENDING, created_at=NOW - timedelta(seconds=121)
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["outbox"] == {
        "status": "fail",
        "reason": "trigger events wait too long",
        "lag_seconds": 121,
    }


def test_database_down_is_503_naming_only_the_error_class(client, schedules, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" (10.1.2.3), port 5432 failed: password')

    monkeypatch.setattr(connection, "cursor", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"] == {"status": "fail", "error": "OperationalError"}
    assert body["checks"]["outbox"] == {"status": "fail", "error": "OperationalError"}
    assert "db.internal" not in response.content.decode()
    assert "10.1.2.3" not in response.content.decode()


def test_only_get_and_head(client, schedules):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
