"""
The SMTP server is configured through the environment, like the e-mail backend: a worker started with
EMAIL_BACKEND=…smtp.EmailBackend used to ignore EMAIL_HOST / EMAIL_PORT (the settings never read them) and
talked to localhost:25 — every e-mail of a bulk run stayed queued with "Connection refused" and a retry time
while the task queue looked idle (tasks acknowledged, no task rows kept on success).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def settings_in_subprocess(env: dict[str, str], *names: str) -> list[str]:
    """The values a fresh process (a worker, the web server) reads for the settings `names`."""
    code = "import django; django.setup(); from django.conf import settings as s; "
    code += f"print('\\n'.join(repr(getattr(s, name)) for name in {names!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "loyalty_site.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


def test_the_smtp_server_is_read_from_the_environment():
    env = {
        "SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEY": "Fh1q0pVbH3X0b1m8cZl9nI8cN0pJv1yQe2m6sTQ3c0k=",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.net",
        "EMAIL_PORT": "2525",
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "s3cret",
        "EMAIL_USE_TLS": "true",
        "EMAIL_TIMEOUT": "12.5",
    }
    names = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS")
    names += ("EMAIL_USE_SSL", "EMAIL_TIMEOUT")

    assert settings_in_subprocess(env, *names) == [
        "'smtp.example.net'",
        "2525",
        "'mailer'",
        "'s3cret'",
        "True",
        "False",
        "12.5",
    ]
