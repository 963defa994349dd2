"""
API throttling (rates in `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`, set from the environment):

- `token`: requests per API token;
- `ip`: requests per client IP for everything not made with a token (sessions, anonymous);
- `auth_failure`: failed token authentications per client IP. Past it, every token attempt from that IP
  is answered 429 until the window passes, so guessing tokens is bounded.

Rates are read at request time, so `override_settings` applies in tests. The counters live in the
default cache: per process with the local-memory cache, shared with Redis or Memcached.
"""

from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken


class _LiveRateThrottle(SimpleRateThrottle):
    # Set by SimpleRateThrottle.__init__ from the rate (None without a rate); the stubs do not declare them.
    num_requests: int | None
    duration: int | None

    def get_rate(self) -> str | None:
        # The stubs type the rates as numbers; DRF reads "N/period" strings.
        rates: dict[str, str | None] = api_settings.DEFAULT_THROTTLE_RATES or {}  # type: ignore[assignment]
        return rates.get(self.scope) if self.scope is not None else None


class TokenRateThrottle(_LiveRateThrottle):
    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class IPRateThrottle(_LiveRateThrottle):
    scope = "ip"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthFailureThrottle(_LiveRateThrottle):
    """Counts failed authentications per IP (called by the authentication class, not by DRF's loop)."""

    scope = "auth_failure"

    def _load(self, request: Request) -> bool:
        if self.rate is None or self.duration is None:
            return False
        self.key = self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return True

    def check(self, request: Request) -> None:
        if self._load(request) and self.num_requests is not None and len(self.history) >= self.num_requests:
            raise exceptions.Throttled(wait=self.wait(), detail="Too many failed authentications from this address.")

    def record(self, request: Request) -> None:
        if self._load(request):
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)
