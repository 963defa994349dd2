"""
Helpers shared by the engine's tests (this module holds no tests).

The worker is made deterministic: `loyalty_site.lib.tasks.enqueue_on_commit` is replaced by a recording
queue and tests run the recorded task functions themselves with `queue.drain()`; no qcluster is started.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.utils.module_loading import import_string

from apps.automations import services
from apps.automations.models import Workflow
from loyalty_site.lib import tasks


class RecordingQueue:
    def __init__(self, capture: Any = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        # django_capture_on_commit_callbacks: writes made by tasks announce their events "after commit".
        self.capture = capture

    def enqueue(self, func_path: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((func_path, args))

    def drain(self, limit: int = 500) -> int:
        """Run queued tasks (and those they enqueue) in order; returns how many ran."""
        ran = 0
        while self.calls and ran < limit:
            func_path, args = self.calls.pop(0)
            if self.capture is None:
                import_string(func_path)(*args)
            else:
                with self.capture(execute=True):
                    import_string(func_path)(*args)
            ran += 1
        return ran

    def names(self) -> list[str]:
        return [func_path.rsplit(".", 1)[-1] for func_path, _ in self.calls]


@pytest.fixture
def queue(monkeypatch, django_capture_on_commit_callbacks) -> RecordingQueue:
    recording = RecordingQueue(django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks, "enqueue_on_commit", recording.enqueue)
    return recording


@pytest.fixture
def fire(django_capture_on_commit_callbacks, queue):
    """Run a write as if committed (its signals fire), then run the worker until the queue is empty."""

    def run(write, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            result = write(*args, **kwargs)
        queue.drain()
        return result

    return run


def definition(event: str, steps: list[dict], where: dict | None = None) -> dict:
    trigger: dict[str, Any] = {"event": event}
    if where is not None:
        trigger["where"] = where
    return {"schema": 1, "trigger": trigger, "steps": steps}


def add_tags(*tags: str, step_id: str | None = None) -> dict:
    step: dict[str, Any] = {"action": "customer.add_tags", "params": {"tags": list(tags)}}
    if step_id:
        step["id"] = step_id
    return step


def active_workflow(name: str, event: str, steps: list[dict], where: dict | None = None, **settings: Any) -> Workflow:
    workflow = services.workflow_create(name=name, definition=definition(event, steps, where), **settings)
    return services.workflow_activate(workflow=workflow)


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 recording what it receives and answering `statuses` in turn."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.location = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": status < 300}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[WebhookReceiver]:
    settings.AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = True
    settings.AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS = False
    with WebhookReceiver() as server:
        yield server
