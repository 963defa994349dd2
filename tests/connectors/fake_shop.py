"""A fake shop Admin API on 127.0.0.1 for the push tests: records requests, answers a scripted sequence."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class FakeShop:
    """Each request pops the next scripted answer `(status, body dict, headers)`; 200 `{"data": {}}` when none."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), 1_000_000)
                body = self.rfile.read(length)
                shop.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "json": json.loads(body) if body else None,
                    }
                )
                status, payload, headers = shop.answers.pop(0) if shop.answers else (200, shop.ok(), {})
                self.send_response(status)
                self.send_header("content-type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(json.dumps(payload).encode())

            do_POST = _answer
            do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def ok() -> dict[str, Any]:
        return {"data": {"result": {"userErrors": []}}}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def fake_shop(settings):
    settings.CONNECTORS_PUSH_ALLOW_PRIVATE = True
    settings.CONNECTORS_PUSH_REQUIRE_HTTPS = False
    shop = FakeShop()
    shop.thread.start()
    yield shop
    shop.server.shutdown()
    shop.server.server_close()
