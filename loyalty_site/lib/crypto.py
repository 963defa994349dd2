"""
Encryption at rest of stored secrets (webhook signing secrets, connector keys), with Fernet
(AES-128-CBC + HMAC-SHA256, from the maintained `cryptography` package).

Keys come from settings.FIELD_ENCRYPTION_KEY (the environment, or var/field-encryption-key.txt that
`scripts/run` generates once per install): one or more comma-separated Fernet keys; the first encrypts,
every one decrypts, so a key is rotated by putting the new one first (then re-saving rewrites rows).
A stored value is text: `encrypted:v1:<Fernet token>`.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "encrypted:v1:"


class SecretUnreadable(Exception):
    """The stored value was not encrypted with any of the configured keys (or was altered)."""


@lru_cache(maxsize=4)
def _fernet(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY is not a list of Fernet keys: {error}") from None


def _cipher() -> MultiFernet:
    keys = getattr(settings, "FIELD_ENCRYPTION_KEY", None) or ""
    if not keys.strip():
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY is not set (generate one with "
            '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).'
        )
    return _fernet(keys)


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def secret_encrypt(plaintext: str) -> str:
    return PREFIX + _cipher().encrypt(plaintext.encode()).decode()


def secret_decrypt(stored: str) -> str:
    if not is_encrypted(stored):
        raise SecretUnreadable("not an encrypted value")
    try:
        return _cipher().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("encrypted with an unknown key, or altered") from None
