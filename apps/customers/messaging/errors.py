"""How a channel reports a failed send: transient (retried with backoff) or permanent (the row fails)."""

from __future__ import annotations

from .choices import DeliveryReason


class ProviderError(Exception):
    """A provider refused or could not take a message."""

    def __init__(self, message: str, *, transient: bool, reason: str = DeliveryReason.PROVIDER_ERROR) -> None:
        super().__init__(message)
        self.transient = transient
        self.reason = reason


def http_status_is_transient(status: int | None) -> bool:
    """No answer, 5xx and 429 are worth retrying; any other 4xx is the message's fault."""
    return status is None or status >= 500 or status in (408, 425, 429)
