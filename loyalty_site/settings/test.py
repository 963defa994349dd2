"""Tests: only what tests need differs from base."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECRET_KEY = "test-secret-key"

# Throttling is off in tests except where a test sets low rates with override_settings (and clears the cache).
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": None, "ip": None, "auth_failure": None}}  # noqa: F405
FIELD_ENCRYPTION_KEY = "Fh1q0pVbH3X0b1m8cZl9nI8cN0pJv1yQe2m6sTQ3c0k="
