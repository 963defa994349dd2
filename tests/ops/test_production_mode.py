"""
`scripts/run production` for real: gunicorn on 127.0.0.1 with the production settings, WhiteNoise,
a qcluster, /healthz, the admin login page and the security headers; and `scripts/run`'s refusals.

Each test starts the script in its own process group with a temporary SQLite database and static root,
waits (bounded) for it to answer, and stops the whole group.
"""

import contextlib
import os
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FERNET_KEY = "Fh1q0pVbH3X0b1m8cZl9nI8cN0pJv1yQe2m6sTQ3c0k="
STARTUP_LIMIT_SECONDS = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
        SECRET_KEY="smoke-" + "k" * 60,
        FIELD_ENCRYPTION_KEY=FERNET_KEY,
        HOST="127.0.0.1",
        WEB_CONCURRENCY="1",
        WEB_THREADS="2",
        Q_WORKERS="1",
    )
    env.update(extra)
    return env


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the script (it stops gunicorn and qcluster), then SIGKILL whatever is left of its group."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture
def production_server(tmp_path):
    port = free_port()
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        ["bash", "scripts/run", "production"],
        cwd=ROOT,
        env=script_env(tmp_path, PORT=str(port)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    try:
        while True:
            try:
                status, _, _ = get(base + "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("scripts/run production did not answer /healthz:\n" + (tmp_path / "run.log").read_text())
            time.sleep(0.5)
        yield base
    finally:
        stop_group(process)
        log.close()


def test_production_mode_serves_static_health_and_admin_with_security_headers(production_server):
    https = {"X-Forwarded-Proto": "https"}  # as the TLS-terminating proxy says

    status, headers, body = get(production_server + "/healthz")
    assert status == 200
    assert body.startswith(b'{"status": "ok"')

    status, headers, body = get(production_server + "/static/automations/builder/builder.js", https)
    assert status == 200
    assert headers["content-type"].startswith("text/javascript")
    assert b"import" in body

    status, headers, body = get(production_server + "/admin/login/", https)
    assert status == 200
    assert b'name="username"' in body
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "geolocation=()" in headers["permissions-policy"]
    assert "Secure" in headers["set-cookie"]

    # Plain http is redirected to https (the health probe excepted); schema and docs need a login.
    status, headers, _ = get(production_server + "/admin/login/")
    assert status == 301
    assert headers["location"].startswith("https://")
    assert get(production_server + "/api/schema/", https)[0] == 401
    assert get(production_server + "/api/docs/", https)[0] == 401


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`scripts/run` expected to stop by itself; its whole process group is killed whatever happens."""
    process = subprocess.Popen(
        ["bash", "scripts/run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_run_refuses_a_public_host_with_debug_on(tmp_path):
    result = run_script(script_env(tmp_path, HOST="0.0.0.0", PORT=str(free_port())))

    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 with DEBUG on" in result.stderr
    assert not (tmp_path / "db.sqlite3").exists()  # stopped before migrating


def test_run_generates_a_private_per_install_secret_key(tmp_path):
    env = script_env(tmp_path, HOST="0.0.0.0", PORT=str(free_port()))
    del env["SECRET_KEY"]
    key_file = ROOT / "var" / "secret-key.txt"

    result = run_script(env)

    assert result.returncode == 1

    key = key_file.read_text().strip()
    assert len(key) >= 50
    assert key != "dev-only-insecure-secret-key-change-me"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
