"""
The one rule of a state tag — its carriers are exactly its matchers — applied to one customer (real time) or
set-based to many (the time pass, the recomputation on activation). Within an exclusive group the highest
matching rank wins: the old tag comes off and the new one goes on in the same transaction. Every change goes
through the tagging services, so it is audited and announced (`customer.tag_added` / `customer.tag_removed`)
with the source `workflow` and the reference `state_tag:<workflow id>`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.customers.models import Customer
from apps.tagging.choices import TagSource
from apps.tagging.models import CustomerTag
from apps.tagging.services import (
    tag_names_clean,
    tags_add,
    tags_add_bulk,
    tags_get_or_create,
    tags_remove,
    tags_remove_bulk,
)
from loyalty_site.lib.conditions import IdIn, Scope, audience_queryset, template_render
from loyalty_site.lib.tasks import db_error_is_transient

from ..engine import context_build
from ..engine.context import evaluate
from .spec import FILL_SUFFIX, StateSpec

logger = logging.getLogger(__name__)

CHUNK = 5000


@dataclass
class Changes:
    """What a re-evaluation did: (customer id, tag name) pairs added and removed."""

    added: list[tuple[int, str]] = field(default_factory=list)
    removed: list[tuple[int, str]] = field(default_factory=list)
    customers: int = 0

    def merge(self, other: Changes) -> None:
        self.added += other.added
        self.removed += other.removed
        self.customers += other.customers


# --- One customer (real time) ----------------------------------------------------------------------------


def _tag_for(spec: StateSpec, context) -> str:
    if not spec.dynamic:
        return spec.tag
    names = tag_names_clean([", ".join(template_render(spec.tag, context))])
    return names[0] if names else ""


def _winner(unit: Sequence[StateSpec], context) -> tuple[StateSpec, str] | None:
    """The matching state tag of highest rank (units are sorted so) and its tag name for this customer."""
    for spec in unit:
        passed, _values = evaluate(spec.condition, context)
        if passed:
            name = _tag_for(spec, context)
            if name:
                return spec, name
    return None


@transaction.atomic
def customer_reevaluate(
    *, customer_id: int, units: Iterable[Sequence[StateSpec]], now: datetime | None = None
) -> Changes:
    """
    Re-evaluate state tags for one customer and add / remove their tags. The customer row is locked, so two
    events of the same customer re-evaluate one after the other; a unit whose condition cannot be evaluated
    is left as it is (logged), never half-applied.
    """
    changes = Changes()
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        return changes
    context = context_build(customer=customer, now=now or timezone.now())
    carried = {row.tag.name.lower(): row for row in CustomerTag.objects.filter(customer=customer).select_related("tag")}
    changes.customers = 1
    for unit in units:
        try:
            winner = _winner(unit, context)
        except Exception as error:
            if db_error_is_transient(error):
                raise
            logger.warning("state tag %s: cannot evaluate for customer %s: %s", unit[0].pk, customer_id, error)
            continue
        wanted = winner[1].lower() if winner else None
        by_name = {spec.tag.lower(): spec for spec in unit if not spec.dynamic}
        for name, row in list(carried.items()):
            owner = by_name.get(name)
            if owner is None and unit[0].dynamic and row.source_ref in _refs(unit[0]):
                owner = unit[0]
            if owner is None or name == wanted:
                continue
            tags_remove(customer=customer, names=[row.tag.name], source=TagSource.WORKFLOW, source_ref=owner.source_ref)
            del carried[name]
            changes.removed.append((customer.pk, row.tag.name))
        if winner is not None and wanted not in carried:
            spec, name = winner
            for row in tags_add(customer=customer, names=[name], source=TagSource.WORKFLOW, source_ref=spec.source_ref):
                carried[row.tag.name.lower()] = row
                changes.added.append((customer.pk, row.tag.name))
    return changes


def _refs(spec: StateSpec) -> tuple[str, str]:
    return spec.source_ref, spec.source_ref + FILL_SUFFIX


# --- Many customers (set-based) ----------------------------------------------------------------------------


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def unit_recompute(
    unit: Sequence[StateSpec], *, now: datetime, customer_ids: Sequence[int] | None = None, fill: bool = False
) -> Changes:
    """
    Make the unit's carriers its matchers among `customer_ids` (every customer when None): one compiled query
    per state tag and per chunk for the matchers, one for the carriers, then set-based removals and additions
    (`tags_remove_bulk` / `tags_add_bulk`), all in one transaction per chunk. `fill` (the recomputation on
    activation) marks the tags so that they do not start the workflow's "entered"/"left" steps.
    """
    changes = Changes()
    if unit[0].dynamic:
        return _dynamic_recompute(unit[0], now=now, customer_ids=customer_ids)
    tags = {spec.pk: tags_get_or_create(names=[spec.tag])[0] for spec in unit}
    if customer_ids is None:
        changes.merge(_apply(unit, tags, now=now, customer_ids=None, fill=fill))
        return changes
    for chunk in _chunks(sorted(set(customer_ids))):
        changes.merge(_apply(unit, tags, now=now, customer_ids=chunk, fill=fill))
    return changes


@transaction.atomic
def _apply(
    unit: Sequence[StateSpec], tags: dict, *, now: datetime, customer_ids: list[int] | None, fill: bool
) -> Changes:
    # A chunk of candidates is a scope: the windowed figures aggregate only their orders, not every order of
    # the window (which made a pass over a few candidates cost as much as a third of a full recomputation).
    scope = Scope(ids=customer_ids) if customer_ids is not None else None
    desired: dict[int, int] = {}  # customer -> the tag id it should carry (the highest matching rank)
    for spec in unit:
        tag_id = tags[spec.pk].pk
        matchers = audience_queryset(spec.condition, now=now, base=Customer.objects.order_by(), scope=scope)
        for customer_id in matchers.values_list("pk", flat=True):
            desired.setdefault(customer_id, tag_id)
    carriers = CustomerTag.objects.filter(tag_id__in=[tag.pk for tag in tags.values()]).order_by()
    if customer_ids is not None:
        carriers = carriers.filter(IdIn("customer_id", customer_ids))
    carried: dict[int, set[int]] = defaultdict(set)
    for customer_id, tag_id in carriers.values_list("customer_id", "tag_id"):
        carried[customer_id].add(tag_id)
    removals: dict[int, list[int]] = defaultdict(list)
    additions: dict[int, list[int]] = defaultdict(list)
    for customer_id in desired.keys() | carried.keys():
        want = desired.get(customer_id)
        have = carried.get(customer_id, set())
        for tag_id in have - {want}:
            removals[tag_id].append(customer_id)
        if want is not None and want not in have:
            additions[want].append(customer_id)
    changes = Changes(customers=len(customer_ids) if customer_ids is not None else 0)
    by_tag = {tags[spec.pk].pk: spec for spec in unit}
    for tag_id, ids in sorted(removals.items()):
        spec = by_tag[tag_id]
        for chunk in _chunks(sorted(ids)):
            tags_remove_bulk(customer_ids=chunk, names=[spec.tag], source_ref=_ref(spec, fill))
        changes.removed += [(customer_id, spec.tag) for customer_id in ids]
    for tag_id, ids in sorted(additions.items()):
        spec = by_tag[tag_id]
        for chunk in _chunks(sorted(ids)):
            tags_add_bulk(customer_ids=chunk, names=[spec.tag], source_ref=_ref(spec, fill))
        changes.added += [(customer_id, spec.tag) for customer_id in ids]
    return changes


def _ref(spec: StateSpec, fill: bool) -> str:
    return spec.source_ref + (FILL_SUFFIX if fill else "")


def _dynamic_recompute(spec: StateSpec, *, now: datetime, customer_ids: Sequence[int] | None) -> Changes:
    """A tag name built per customer is rendered per customer: the candidates are re-evaluated one by one."""
    if customer_ids is None:
        matched = audience_queryset(spec.condition, now=now, base=Customer.objects.order_by()).values_list(
            "pk", flat=True
        )
        owners = CustomerTag.objects.filter(source_ref__in=_refs(spec)).values_list("customer_id", flat=True)
        customer_ids = sorted(set(matched) | set(owners))
    changes = Changes()
    for customer_id in customer_ids:
        changes.merge(customer_reevaluate(customer_id=customer_id, units=[[spec]], now=now))
    return changes


def state_tags_recompute(*, workflow_id: int, now: datetime | None = None) -> int:
    """
    Full recomputation of the unit (the state tag, or its whole exclusive group) holding this workflow, as on
    activation; marks the unit checked for the time pass. Returns the number of tag changes.
    """
    from ..models import Workflow
    from .spec import state_units, state_workflows_active

    now = now or timezone.now()
    for unit in state_units(state_workflows_active()):
        if any(spec.pk == workflow_id for spec in unit):
            changes = unit_recompute(unit, now=now, fill=True)
            Workflow.objects.filter(pk__in=[spec.pk for spec in unit]).update(state_checked_at=now)
            return len(changes.added) + len(changes.removed)
    return 0
