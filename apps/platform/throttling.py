"""
API throttling (rates in `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`, set from the environment):

- `token`: requests per API token;
- `ip`: requests per client IP for everything not made with a token (sessions, anonymous);
- `auth_failure`: failed token authentications per client IP. Past it, every token attempt from that IP
  is answered 429 until the window passes, so guessing tokens is bounded.

Rates are read at request time, so `override_settings` applies in tests. The counters live in the
default cache: per process with the local-memory cache, shared with Redis or Memcached.

How a rate "N/period" is counted: a *sliding-window counter*. Each key has one integer per fixed window of
`period` seconds (aligned on the epoch); a request is allowed when the previous window's count, weighted by
the share of that window still inside the last `period` seconds, plus the current window's count, leaves
room for it: `previous * (1 - elapsed / period) + current + 1 <= N`. An allowed request adds one to the
current window with `cache.incr` (atomic in Redis and Memcached); a refused one adds nothing. That is two
integers read and one incremented per request, whatever the rate. DRF's `SimpleRateThrottle` kept every
request's timestamp of the last period in one pickled list, read, trimmed and written back whole on each
request: with the default 1200/min that list holds up to 1200 floats, and under a benchmark's 1000000/min
it grew to the whole minute's requests (O(n) per request, and increments lost between threads and
processes, since it was read-modify-write). The counter assumes the previous window's requests were spread
evenly over it: a burst at the very end of one window lets slightly more than N through in the 60 s that
follow it (at most N * elapsed/period more), never 2N as a plain fixed window would; steady clients see the
same limit as before. 429 answers keep `Retry-After` (the seconds until the estimate leaves room again).
"""

import math
from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken


class _LiveRateThrottle(SimpleRateThrottle):
    """A sliding-window counter (see the module) in the default cache, with DRF's rate settings."""

    # Set by SimpleRateThrottle.__init__ from the rate (None without a rate); the stubs do not declare them.
    num_requests: int | None
    duration: int | None

    def get_rate(self) -> str | None:
        # The stubs type the rates as numbers; DRF reads "N/period" strings.
        rates: dict[str, str | None] = api_settings.DEFAULT_THROTTLE_RATES or {}  # type: ignore[assignment]
        return rates.get(self.scope) if self.scope is not None else None

    def _windows(self, key: str) -> tuple[str, float]:
        """Sets the current window's key; (the previous window's key, seconds into the current window)."""
        assert self.duration is not None
        self.now = self.timer()
        window, elapsed = divmod(self.now, self.duration)
        self._window_key = f"{key}:{int(window)}"
        return f"{key}:{int(window) - 1}", elapsed

    def _estimate(self, key: str) -> tuple[float, int, int, float]:
        """(requests counted in the last period, previous count, current count, seconds into the window)."""
        assert self.duration is not None
        previous_key, elapsed = self._windows(key)
        counts = self.cache.get_many([previous_key, self._window_key])
        previous, current = int(counts.get(previous_key, 0)), int(counts.get(self._window_key, 0))
        return previous * (1 - elapsed / self.duration) + current, previous, current, elapsed

    def _count(self) -> None:
        """One more request in the current window (kept two periods: the next window still weighs it)."""
        assert self.duration is not None
        # incr first: one cache operation for every request of a window but its first.
        try:
            self.cache.incr(self._window_key)
        except ValueError:  # the window's first request (or its key was evicted)
            if not self.cache.add(self._window_key, 1, timeout=2 * self.duration):
                self.cache.incr(self._window_key)  # another thread or process added it meanwhile

    def _room(self, key: str) -> bool:
        estimate, self._previous, self._current, self._elapsed = self._estimate(key)
        assert self.num_requests is not None
        return estimate + 1 <= self.num_requests

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None or self.num_requests is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.key = key
        if not self._room(key):
            return False
        self._count()
        return True

    def wait(self) -> float | None:
        """Seconds until the estimate leaves room for one more request (at least 1)."""
        if self.num_requests is None or self.duration is None:
            return None
        period, limit = float(self.duration), self.num_requests
        previous, current, elapsed = self._previous, self._current, self._elapsed
        if current + 1 <= limit and previous > 0:
            # Within this window: once the previous window's weight has fallen far enough.
            seconds = period * (1 - (limit - current - 1) / previous) - elapsed
        else:
            # This window alone is full: into the next one, until this window's weight has fallen.
            seconds = (period - elapsed) + (period * (1 - (limit - 1) / current) if current else 0.0)
        return float(max(1, math.ceil(seconds)))


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

    def _key(self, request: Request) -> str | None:
        if self.rate is None or self.duration is None or self.num_requests is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def check(self, request: Request) -> None:
        key = self._key(request)
        if key is not None and not self._room(key):
            raise exceptions.Throttled(wait=self.wait(), detail="Too many failed authentications from this address.")

    def record(self, request: Request) -> None:
        key = self._key(request)
        if key is not None:
            self._windows(key)
            self._count()
