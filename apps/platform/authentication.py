"""
Bearer-token authentication for integrators; tokens are stored as SHA-256 digests only.

The token row, its user and the user's permissions are read from the database once and then kept for
`API_AUTH_CACHE_SECONDS` (default 5 s; 0 turns the cache off) in the web process: a busy integrator's
requests otherwise spend three of their statements (token, user permissions, group permissions) re-reading
what did not change. Any change that can alter the answer — a token saved or deleted (revoked, scopes
edited), a user saved or deleted (deactivated), a change of a user's groups or permissions or of a group's
permissions, a group or permission deleted — replaces the *generation* kept in Django's default cache, and
every cached entry of an older generation is read again. So a change is seen at once by the process that
made it, and by every process when `CACHE_URL` is a shared cache (Redis, Memcached); with the default
per-process memory cache, other processes see it within `API_AUTH_CACHE_SECONDS`. Expiry is checked on
every request against the clock, never cached.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken

TOKEN_PREFIX = "lsk_"
# A hot token would otherwise write its row on every request.
LAST_USED_RESOLUTION_SECONDS = 60
GENERATION_KEY = "platform:api-auth:generation"
# Enough for every token a deployment uses at once; past it the oldest entries are dropped.
CACHE_MAX_ENTRIES = 1000


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_generate() -> str:
    """A new random token; shown once, never stored in clear."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


# --- The per-process cache of tokens, users and permissions ---------------------------------------------


@dataclass
class _Entry:
    token: ApiToken  # with its user (select_related), the permission caches of ModelBackend filled in
    permissions: tuple[frozenset[str], frozenset[str], frozenset[str]]  # user's, groups', all
    generation: str
    fresh_until: float  # _clock()


_entries: dict[str, _Entry] = {}
_clock = time.monotonic  # a module attribute, so tests can move it
_entries_lock = threading.Lock()


def _ttl() -> float:
    return float(getattr(settings, "API_AUTH_CACHE_SECONDS", 5))


def auth_generation() -> str:
    """The current generation (created when missing, e.g. evicted: every older entry is then re-read)."""
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, secrets.token_hex(8), timeout=None)
        generation = cache.get(GENERATION_KEY) or ""
    return generation


def auth_cache_invalidate(**_: Any) -> None:
    """
    Something a cached token's answer depends on changed: start a new generation now and again after the
    surrounding transaction commits (a request reading the old rows before the commit cached them under
    the first new generation).
    """
    _entries.clear()
    cache.set(GENERATION_KEY, secrets.token_hex(8), timeout=None)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: cache.set(GENERATION_KEY, secrets.token_hex(8), timeout=None))


def _token_read(digest: str) -> ApiToken | None:
    return (
        ApiToken.objects.select_related("user")
        .filter(digest=digest, revoked_at__isnull=True, user__is_active=True)
        .first()
    )


def _permissions_load(user: Any) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The user's permissions as ModelBackend caches them on the instance (two queries; none for a superuser)."""
    if user.is_superuser:
        return frozenset(), frozenset(), frozenset()  # has_perm answers True without reading them
    everything = frozenset(user.get_all_permissions())
    return (
        frozenset(getattr(user, "_user_perm_cache", ())),
        frozenset(getattr(user, "_group_perm_cache", ())),
        everything,
    )


def _token_cached(digest: str) -> ApiToken | None:
    """The token with this digest (usable or not is checked by the caller), its user's permissions loaded."""
    ttl = _ttl()
    if ttl <= 0:
        token = _token_read(digest)
        if token is not None:
            _permissions_load(token.user)
        return token
    generation = auth_generation()
    now = _clock()
    entry = _entries.get(digest)
    if entry is None or entry.generation != generation or entry.fresh_until < now:
        # The generation is read before the rows: a change committed meanwhile makes this entry stale.
        token = _token_read(digest)
        if token is None:
            _entries.pop(digest, None)
            return None
        entry = _Entry(
            token=token, permissions=_permissions_load(token.user), generation=generation, fresh_until=now + ttl
        )
        with _entries_lock:
            if len(_entries) >= CACHE_MAX_ENTRIES:
                _entries.clear()
            _entries[digest] = entry
    # Each request gets its own copies: views may read or annotate them without touching another thread's.
    token = _instance_copy(entry.token)
    user = _instance_copy(entry.token.user)
    token.user = user
    if not user.is_superuser:
        # ModelBackend's own per-instance caches: has_perm() then reads no row.
        for attribute, names in zip(
            ("_user_perm_cache", "_group_perm_cache", "_perm_cache"), entry.permissions, strict=True
        ):
            setattr(user, attribute, set(names))
    return token


def _instance_copy(instance: Any) -> Any:
    """
    A shallow copy of a model instance, as `copy.copy` makes it (a new instance, its own `_state` and related-object
    cache) without the pickle protocol `copy.copy` goes through (`__reduce__`, the app registry, `__setstate__`):
    15 µs for the token and its user instead of 43 on this host.
    """
    clone = instance.__class__.__new__(instance.__class__)
    state = instance.__dict__.copy()
    state["_state"] = copy.copy(instance._state)
    state["_state"].fields_cache = instance._state.fields_cache.copy()
    clone.__dict__ = state
    return clone


def _last_used_note(digest: str, now: Any) -> None:
    entry = _entries.get(digest)
    if entry is not None:
        entry.token.last_used_at = now


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` (also accepts the `Token` keyword). Failures are throttled per IP."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="ignore") not in self.keywords:
            return None
        from .throttling import AuthFailureThrottle

        failures = AuthFailureThrottle()
        failures.check(request)
        if len(header) != 2:
            failures.record(request)
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        digest = token_digest(header[1].decode(errors="ignore"))
        token = _token_cached(digest)
        now = timezone.now()
        if token is None:
            failures.record(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not token.is_usable(now=now):
            failures.record(request)
            raise exceptions.AuthenticationFailed("This token has expired.")
        ip = client_ip(request)
        stale = token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        if stale:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
            _last_used_note(digest, now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
