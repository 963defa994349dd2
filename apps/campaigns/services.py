"""Segment write services: create/update validate the condition; refresh is one set-based pass."""

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from apps.customers.models import Customer
from apps.platform.audit import audit_record, audit_snapshot
from loyalty_site.lib.conditions import audience_queryset, condition_validate

from .models import Segment, SegmentMember


def segment_condition_errors(condition: Any) -> list[tuple[str, str]]:
    """Every problem in a segment's condition, as (path under `condition`, message): customer fields in SQL only."""
    return [
        (f"condition.{error.path}" if error.path else "condition", error.message)
        for error in condition_validate(condition, path="", scopes=("customer",), audience=True)
    ]


def _segment_check(*, name: str, condition: Any, exclude_pk: int | None = None) -> None:
    errors: dict[str, str] = {}
    name = " ".join(name.split())
    if not name:
        errors["name"] = "A segment needs a name."
    else:
        same_name = Segment.objects.annotate(lname=Lower("name")).filter(lname=name.lower())
        if exclude_pk is not None:
            same_name = same_name.exclude(pk=exclude_pk)
        if same_name.exists():
            errors["name"] = "Another segment has this name."
    for path, message in segment_condition_errors(condition):
        errors.setdefault(path, message)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def segment_create(*, name: str, condition: Any = None, description: str = "", is_active: bool = True) -> Segment:
    """Create a segment after validating its condition (SQL-compilable customer fields only)."""
    _segment_check(name=name, condition=condition)
    segment = Segment.objects.create(
        name=" ".join(name.split()), condition=condition or None, description=description, is_active=is_active
    )
    audit_record(action="created", obj=segment)
    # Members are computed on save (one set-based pass), so a new segment never shows 0 until a refresh.
    return segment_refresh(segment=segment) if is_active else segment


@transaction.atomic
def segment_update(*, segment: Segment, **fields: Any) -> Segment:
    """Change a segment; an active segment's members are recomputed at once (one set-based pass)."""
    unknown = set(fields) - {"name", "condition", "description", "is_active"}
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown segment field."))
    _segment_check(
        name=fields.get("name", segment.name),
        condition=fields.get("condition", segment.condition),
        exclude_pk=segment.pk,
    )
    before = audit_snapshot(segment)
    for key, value in fields.items():
        setattr(segment, key, " ".join(value.split()) if key == "name" else value)
    segment.save()
    audit_record(action="updated", obj=segment, before=before)
    return segment_refresh(segment=segment) if segment.is_active else segment


@transaction.atomic
def segment_refresh(*, segment: Segment, now: datetime | None = None) -> Segment:
    """
    Make the segment's members exactly the customers matching its condition now: one DELETE of those
    who left and one INSERT … SELECT of those who joined, whatever the number of customers.
    """
    now = now or timezone.now()
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    matching = audience_queryset(segment.condition, now=now, base=Customer.objects.all()).values("pk")
    SegmentMember.objects.filter(segment=segment).exclude(customer_id__in=matching).delete()
    select_sql, params = matching.annotate(member_id=F("pk")).values("member_id").query.sql_with_params()
    table = SegmentMember._meta.db_table
    with connection.cursor() as cursor:
        # `WHERE 1 = 1` keeps SQLite from reading ON CONFLICT as a join constraint.
        cursor.execute(
            f"INSERT INTO {table} (segment_id, customer_id, added_at) "  # noqa: S608 - table name from the model
            f"SELECT %s, matching.member_id, %s FROM ({select_sql}) AS matching WHERE 1 = 1 "
            "ON CONFLICT (segment_id, customer_id) DO NOTHING",
            [segment.pk, now, *params],
        )
    segment.member_count = SegmentMember.objects.filter(segment=segment).count()
    segment.refreshed_at = now
    segment.save(update_fields=["member_count", "refreshed_at", "updated_at"])
    return segment


def segments_refresh_all(*, now: datetime | None = None) -> int:
    """Refresh every active segment (each in its own transaction); returns how many were refreshed."""
    count = 0
    for segment in Segment.objects.filter(is_active=True).order_by("pk"):
        segment_refresh(segment=segment, now=now)
        count += 1
    return count
