"""
The time pass: state tags whose condition moves with the clock (a 30-day window, "no order for 30 days", a
relative date) are re-evaluated on a schedule — but only for the customers whose answer can have changed
since the last pass (for a 30-day window: customers with an order that left the window in between, found on
the `placed_at` index), never by scanning every customer. The catalog says, per field, who those candidates
are (`FieldSpec.moves_with_time`); a field that cannot say makes that state tag fall back to a full
recomputation (still set-based). The result equals a full recomputation (tested on generated data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.customers.models import Customer

from ..models import Workflow
from .apply import Changes, unit_recompute
from .spec import EVERY_CUSTOMER, StateSpec, state_units, state_workflows_active

logger = logging.getLogger(__name__)

# A state tag activated without a pass yet looks back this far at most (its activation recomputed it all).
FIRST_PASS_LOOKBACK = timedelta(days=1)


@dataclass
class PassResult:
    """What one time pass did for one unit (a state tag or an exclusive group)."""

    workflows: list[int]
    candidates: int | None  # None: recomputed in full (a field without a candidate rule)
    added: int
    removed: int


def unit_candidates(unit: list[StateSpec], *, since: datetime, now: datetime) -> Q | object | None:
    """The union of the unit's candidates (a Q), None if nothing moves with time, EVERY_CUSTOMER if unknown."""
    candidates: Q | None = None
    for spec in unit:
        moved = spec.moves(since=since, now=now)
        if moved is EVERY_CUSTOMER:
            return EVERY_CUSTOMER
        if isinstance(moved, Q):
            candidates = moved if candidates is None else candidates | moved
    return candidates


def _since(unit: list[StateSpec], now: datetime) -> datetime:
    checked = [spec.workflow.state_checked_at for spec in unit if spec.workflow.state_checked_at is not None]
    return min(checked) if checked else now - FIRST_PASS_LOOKBACK


def time_pass(*, now: datetime | None = None) -> list[PassResult]:
    """Re-evaluate, for every active state tag that moves with time, the customers whose answer can have changed."""
    now = now or timezone.now()
    results: list[PassResult] = []
    for unit in state_units(state_workflows_active()):
        result = _unit_pass(unit, now=now)
        if result is not None:
            results.append(result)
    return results


def _unit_pass(unit: list[StateSpec], *, now: datetime) -> PassResult | None:
    ids = [spec.pk for spec in unit]
    with transaction.atomic():
        # One pass per unit at a time: a second worker skips the unit instead of doing it twice.
        locked = list(
            Workflow.objects.select_for_update(skip_locked=True).filter(pk__in=ids).values_list("pk", flat=True)
        )
        if len(locked) != len(ids):
            return None
        since = _since(unit, now)
        if since >= now:
            return None
        candidates = unit_candidates(unit, since=since, now=now)
        if candidates is None:
            Workflow.objects.filter(pk__in=ids).update(state_checked_at=now)
            return None
        if candidates is EVERY_CUSTOMER:
            changes: Changes = unit_recompute(unit, now=now)
            count = None
        else:
            assert isinstance(candidates, Q)
            customer_ids = list(Customer.objects.filter(candidates).order_by().values_list("pk", flat=True).distinct())
            changes = unit_recompute(unit, now=now, customer_ids=customer_ids) if customer_ids else Changes()
            count = len(customer_ids)
        Workflow.objects.filter(pk__in=ids).update(state_checked_at=now)
    logger.info("state tags %s: time pass %s candidates, +%d -%d", ids, count, len(changes.added), len(changes.removed))
    return PassResult(workflows=ids, candidates=count, added=len(changes.added), removed=len(changes.removed))
