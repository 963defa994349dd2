"""
loyalty_site/gunicorn.conf.py's per-request costs: the access line (AccessLogger writes gunicorn's line for less),
the preloaded application frozen out of the cyclic GC in every process, and restarts far apart.
"""

import base64
import http.client
import logging
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from loyalty_site.gunicorn_worker import AccessLogger

ROOT = Path(__file__).resolve().parents[2]


def lines(logger_class, resp, environ) -> list[str]:
    """The access lines `logger_class` writes for one request, through a handler like gunicorn's."""
    config = Config()
    config.set("accesslog", "-")
    logger = logger_class(config)
    written: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(self.format(record))

    logger.access_log.handlers = [Keep()]
    logger.access_log.handlers[0].setFormatter(logging.Formatter("%(message)s"))
    logger.now = lambda: "[01/Dec/2026:13:40:00 +0000]"
    logger.access(resp, SimpleNamespace(headers=[("HOST", "shop")]), environ, timedelta(milliseconds=5))
    return written


REQUESTS = [
    (
        SimpleNamespace(status="200 OK", sent=11772, headers=[("Content-Type", "application/json")]),
        {
            "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": "POST",
            "RAW_URI": "/api/v1/promotions/validate",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_USER_AGENT": "python-requests/2.32",
            "HTTP_AUTHORIZATION": "Bearer lsk_secret",
        },
    ),
    (  # quotes in client-sent fields are escaped; a basic-auth user is named; no body sent
        SimpleNamespace(status=404, sent=None, headers=[]),
        {
            "REMOTE_ADDR": "198.51.100.7",
            "REQUEST_METHOD": "GET",
            "RAW_URI": '/x?q="a" "b"',
            "SERVER_PROTOCOL": "HTTP/1.0",
            "HTTP_REFERER": 'http://evil/" 200 1 "',
            "HTTP_USER_AGENT": 'agent "quoted"',
            "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"ana:pw").decode(),
        },
    ),
    (
        SimpleNamespace(status="500 Internal Server Error", sent=0, headers=[]),
        {"REQUEST_METHOD": "PUT", "RAW_URI": "/", "SERVER_PROTOCOL": "HTTP/1.1"},
    ),
]


@pytest.mark.parametrize(("resp", "environ"), REQUESTS)
def test_the_access_line_is_gunicorns_line_byte_for_byte(resp, environ):
    ours, theirs = lines(AccessLogger, resp, environ), lines(Logger, resp, environ)

    assert ours == theirs
    assert len(ours) == 1


def test_the_second_request_line_is_escaped_as_gunicorn_escapes_it():
    (line,) = lines(AccessLogger, *REQUESTS[1])

    assert line == (
        '198.51.100.7 - ana [01/Dec/2026:13:40:00 +0000] "GET /x?q=\\"a\\" \\"b\\" HTTP/1.0" 404 - '
        '"http://evil/\\" 200 1 \\"" "agent \\"quoted\\""'
    )


def test_another_format_is_left_to_gunicorn():
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", "%(h)s %({content-type}o)s")
    logger = AccessLogger(config)
    written: list[str] = []
    logger.access_log.handlers = [logging.Handler()]
    logger.access_log.handlers[0].emit = lambda record: written.append(record.getMessage())  # type: ignore[method-assign]
    resp, environ = REQUESTS[0]

    logger.access(resp, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=5))

    assert written == ["127.0.0.1 application/json"]


def test_the_configuration_restarts_processes_rarely_and_logs_access():
    config = runpy.run_path(str(ROOT / "loyalty_site/gunicorn.conf.py"))

    assert config["max_requests"] == 100_000
    assert config["max_requests_jitter"] == 50_000
    assert config["accesslog"] == "-"
    assert config["logger_class"] == "loyalty_site.gunicorn_worker.AccessLogger"


GC_APP = """
import gc, os

def application(environ, start_response):
    body = f"{os.getpid()} {gc.get_freeze_count()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def test_every_process_starts_with_the_preloaded_application_frozen_out_of_the_gc(tmp_path):
    (tmp_path / "gcapp.py").write_text(GC_APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_THREADS": "2"}
    command = [str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "loyalty_site/gunicorn.conf.py")]
    command += ["--access-logfile", "/dev/null", "--chdir", str(tmp_path), "gcapp"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answers: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while len(answers) < 2 and time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/")
                pid, frozen = connection.getresponse().read().decode().split()
                connection.close()
                answers[pid] = int(frozen)
            except OSError:
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    assert len(answers) == 2
    assert all(frozen > 1000 for frozen in answers.values())  # the preloaded modules, classes, functions
