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

from django.core.exceptions import EmptyResultSet
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


def unit_moves_with_time(unit: list[StateSpec], *, now: datetime) -> bool:
    """Whether anything in the unit's conditions moves with the clock (decided from the definitions: no query)."""
    return unit_candidates(unit, since=now, now=now) is not None


def _since(unit: list[StateSpec], now: datetime) -> datetime:
    checked = [spec.workflow.state_checked_at for spec in unit if spec.workflow.state_checked_at is not None]
    return min(checked) if checked else now - FIRST_PASS_LOOKBACK


def _or_parts(candidates: Q) -> list[Q]:
    """The alternatives of an OR of candidate rules, each on its own (a plain Q is one alternative)."""
    if candidates.connector != Q.OR or candidates.negated:
        return [candidates]
    parts: list[Q] = []
    for child in candidates.children:
        parts.extend(_or_parts(child) if isinstance(child, Q) else [Q(child)])
    return parts


def candidate_ids(candidates: Q) -> list[int]:
    """
    The customers of a candidate rule, one query per distinct alternative. One `id IN (…) OR id IN (…)` would
    make PostgreSQL test every customer id against hashed sub-plans (linear in customers); each alternative
    alone is a semi-join driven by its index range (linear in candidates). Identical alternatives — two
    windowed figures over the same N days — run once.
    """
    found: set[int] = set()
    seen: set[str] = set()
    for part in _or_parts(candidates):
        rows = Customer.objects.filter(part).order_by().values_list("pk", flat=True)
        try:
            key = str(rows.query)
        except EmptyResultSet:  # `pk__in=[]`: matches nobody, asks nothing
            continue
        if key not in seen:
            seen.add(key)
            found.update(rows)
    return sorted(found)


def time_pass(*, now: datetime | None = None) -> list[PassResult]:
    """
    Re-evaluate, for every active state tag that moves with time, the customers whose answer can have changed.
    Its cost follows the work: a state tag whose condition does not move with the clock costs nothing (one
    query lists the active state tags), a timed one with no candidate since its last pass costs two more
    (its candidates, its checked time); only a unit with candidates is locked and re-decided.
    """
    now = now or timezone.now()
    results: list[PassResult] = []
    for unit in state_units(state_workflows_active()):
        if not unit_moves_with_time(unit, now=now):
            continue
        result = _unit_pass(unit, now=now)
        if result is not None:
            results.append(result)
    return results


def _checked_as_read(unit: list[StateSpec]) -> Q:
    """The unit's rows still as this pass read them (no other pass moved their checked time meanwhile)."""
    still = Q(pk__in=[])
    for spec in unit:
        checked = spec.workflow.state_checked_at
        still |= Q(pk=spec.pk, state_checked_at=checked) if checked else Q(pk=spec.pk, state_checked_at__isnull=True)
    return still


def _unit_pass(unit: list[StateSpec], *, now: datetime) -> PassResult | None:
    ids = [spec.pk for spec in unit]
    since = _since(unit, now)
    if since >= now:
        return None
    candidates = unit_candidates(unit, since=since, now=now)
    found = candidate_ids(candidates) if isinstance(candidates, Q) else None
    if found is not None and not found:
        # Idle (the common case, every few minutes): nothing to lock or re-decide. The checked time moves
        # forward only if no other pass moved it meanwhile (then that pass covered this range, or will).
        Workflow.objects.filter(_checked_as_read(unit)).update(state_checked_at=now)
        return PassResult(workflows=ids, candidates=0, added=0, removed=0)
    with transaction.atomic():
        # One pass per unit at a time: a second worker skips the unit instead of doing it twice.
        locked = list(
            Workflow.objects.select_for_update(skip_locked=True).filter(pk__in=ids).values_list("pk", flat=True)
        )
        if len(locked) != len(ids):
            return None
        # Read again under the lock: another pass may have moved the checked time since the list was read.
        checked = dict(Workflow.objects.filter(pk__in=ids).values_list("pk", "state_checked_at"))
        for spec in unit:
            spec.workflow.state_checked_at = checked.get(spec.pk)
        read_since, since = since, _since(unit, now)
        if since >= now:
            return None
        candidates = unit_candidates(unit, since=since, now=now)
        if candidates is None:
            return None
        if candidates is EVERY_CUSTOMER:
            changes: Changes = unit_recompute(unit, now=now)
            count = None
        else:
            assert isinstance(candidates, Q)
            # The candidates read before the lock still hold when no other pass moved the checked time.
            customer_ids = found if found is not None and since == read_since else candidate_ids(candidates)
            # Only the candidates, set-based, chunk by chunk (`apply.CHUNK` ids each, their orders only) — never
            # a scan of every customer, however many candidates a long gap between passes brings.
            changes = unit_recompute(unit, now=now, customer_ids=customer_ids) if customer_ids else Changes()
            count = len(customer_ids)
        Workflow.objects.filter(pk__in=ids).update(state_checked_at=now)
    logger.info("state tags %s: time pass %s candidates, +%d -%d", ids, count, len(changes.added), len(changes.removed))
    return PassResult(workflows=ids, candidates=count, added=len(changes.added), removed=len(changes.removed))
