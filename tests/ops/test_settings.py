"""Settings read from the environment: the psycopg connection pool."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRINT_DATABASE = (
    "import django, json; django.setup(); from django.conf import settings; "
    "db = settings.DATABASES['default']; print(json.dumps({'CONN_MAX_AGE': db['CONN_MAX_AGE'], "
    "'OPTIONS': db.get('OPTIONS', {})}))"
)


def settings_of(module: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_POOL_MAX_SIZE", "SECRET_KEY"}}
    clean.update(DJANGO_SETTINGS_MODULE=module, **env)
    return subprocess.run(
        [sys.executable, "-c", PRINT_DATABASE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_a_pool_size_turns_on_the_psycopg_pool_and_off_persistent_connections():
    result = settings_of(
        "loyalty_site.settings.test",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/x?conn_max_age=600",
        DATABASE_POOL_MAX_SIZE="8",
    )

    assert json.loads(result.stdout) == {
        "CONN_MAX_AGE": 0,
        "OPTIONS": {"pool": {"min_size": 1, "max_size": 8, "timeout": 10.0}},
    }


def test_without_a_pool_size_connections_stay_persistent():
    result = settings_of(
        "loyalty_site.settings.test", DATABASE_URL="postgres://postgres@127.0.0.1:5432/x?conn_max_age=600"
    )

    assert json.loads(result.stdout) == {"CONN_MAX_AGE": 600, "OPTIONS": {}}
