"""
Send governance: what may go out now. Stage A: nothing is capped or delayed yet (frequency caps, quiet
hours and workflow priority follow); the hook is here so every delivery passes one decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.customers.models import Customer


@dataclass(frozen=True)
class Decision:
    reason: str | None = None  # suppressed with this reason
    send_after: datetime | None = None  # delayed (stays queued) until then


SEND_NOW = Decision()


def governance_decide(
    customer: Customer | None, *, channel: str, purpose: str, priority: int, cause: str, now: datetime
) -> Decision:
    return SEND_NOW


def governance_decide_many(
    customers: list[Customer], *, channel: str, purpose: str, priority: int, cause: str, now: datetime
) -> dict[int, Decision]:
    """The decisions for many customers at once (a bulk run): customer id -> decision (absent: send now)."""
    return {}
