"""
Local stand-ins for providers (this module holds no tests): an aiosmtpd SMTP sink and a Twilio-compatible
SMS API, both real servers on 127.0.0.1 that record what they receive and answer as told.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """
    An SMTP server (aiosmtpd) keeping every accepted message; `replies` answer DATA in turn first. The server
    thread only stores the raw bytes and the envelope's recipients; `messages` parses them when a test reads
    them (parsing 10,000 messages inside the server thread slowed the senders it shares the GIL with).
    """

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.envelope_recipients: list[str] = []
        self.replies: list[str] = []
        self.sessions = 0
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_EHLO(
                self, server: Any, session: Any, envelope: Any, hostname: str, responses: list
            ) -> list:
                with sink.lock:
                    sink.sessions += 1
                session.host_name = hostname
                return responses

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with sink.lock:
                    if sink.replies:
                        return sink.replies.pop(0)
                    sink.raw.append(envelope.content)
                    sink.envelope_recipients += envelope.rcpt_tos
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Message]:
        with self.lock:
            raw = list(self.raw)
        return [message_from_bytes(content) for content in raw]

    def recipients(self) -> list[str]:
        """Every address a message was delivered to (the envelopes' RCPT TO), once per delivery."""
        with self.lock:
            return list(self.envelope_recipients)


@pytest.fixture
def smtp_sink(settings) -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_TIMEOUT = 10
        yield sink


class SmsApi:
    """A Twilio-compatible Messages API answering `answers` ((status, json body)) in turn, then 201."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                api.requests.append(
                    {
                        "path": self.path,
                        "headers": {key.lower(): value for key, value in self.headers.items()},
                        "form": dict(urllib.parse.parse_qsl(body.decode())),
                    }
                )
                status, answer = api.answers.pop(0) if api.answers else (201, {"sid": f"SM{len(api.requests):032d}"})
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def basic_auth(self, index: int = -1) -> tuple[str, str]:
        raw = self.requests[index]["headers"]["authorization"].removeprefix("Basic ")
        user, _, password = base64.b64decode(raw).decode().partition(":")
        return user, password

    def __enter__(self) -> SmsApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sms_api(settings) -> Iterator[SmsApi]:
    with SmsApi() as api:
        settings.SMS_BACKEND = "apps.customers.messaging.sms.TwilioSmsBackend"
        settings.SMS_API_URL = api.url
        settings.SMS_ACCOUNT_SID = "AC123"
        settings.SMS_AUTH_TOKEN = "secret-token"
        settings.SMS_FROM = "+15550000000"
        yield api
