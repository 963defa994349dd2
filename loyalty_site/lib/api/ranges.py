"""
Range checks for API input, so a number or a date the database (or Python's datetime) cannot hold is a
400 naming its field, never a 500 from deep inside a query.

- `BoundedInputMixin` for serializers: every integer field without an explicit bound is held to the
  32-bit range of an `integer` column (ids to 64 bits), every date and datetime to years 1900-2999.
- `bound_form_fields` does the same for a FilterSet's form (list filters such as `?placed_after=`).
"""

import copy
import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import CheckConstraint
from rest_framework import serializers

INT32_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2999, 12, 31)


def date_in_range(value: dt.date | dt.datetime | None) -> None:
    """Dates and datetimes between 1900-01-01 and 2999-12-31 (far from datetime's overflow at years 1 and 9999)."""
    if value is None:
        return
    day = value.date() if isinstance(value, dt.datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValidationError(
            f"Dates must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}.", code="date_out_of_range"
        )


# The ranges of PostgreSQL's integer columns (SQLite would take 64 bits anywhere; the API must not).
COLUMN_RANGES = {
    "SmallIntegerField": (-(2**15), 2**15 - 1),
    "PositiveSmallIntegerField": (0, 2**15 - 1),
    "IntegerField": (-(2**31), INT32_MAX),
    "PositiveIntegerField": (0, INT32_MAX),
    "BigIntegerField": (-(2**63), BIGINT_MAX),
    "PositiveBigIntegerField": (0, BIGINT_MAX),
    "AutoField": (1, INT32_MAX),
    "BigAutoField": (1, BIGINT_MAX),
}


def _integer_bounds(field: Any, low: int, high: int) -> None:
    """Add the range (a tighter one already there still applies); the attributes feed the OpenAPI schema."""
    field.validators.extend([MinValueValidator(low), MaxValueValidator(high)])
    field.max_value = high if getattr(field, "max_value", None) is None else min(field.max_value, high)
    field.min_value = low if getattr(field, "min_value", None) is None else max(field.min_value, low)


def _column_range(serializer: Any, name: str, field: serializers.Field) -> tuple[int, int]:
    model = getattr(getattr(serializer, "Meta", None), "model", None)
    source = field.source if field.source not in (None, "*") else name
    if model is not None and "." not in source:
        try:
            internal_type = model._meta.get_field(source).get_internal_type()
        except FieldDoesNotExist:  # (a declared field, not a model one)
            internal_type = ""
        if internal_type in COLUMN_RANGES:
            return COLUMN_RANGES[internal_type]
    if name == "id" or name.endswith("_id"):
        return -(2**63), BIGINT_MAX
    return -(2**31), INT32_MAX


def _constraint_path(condition: Any, attrs: dict[str, Any]) -> str:
    """The first input field a check constraint's condition names (`Q(points_cost__gt=0)` → points_cost)."""
    stack = [condition]
    while stack:
        node = stack.pop(0)
        for child in getattr(node, "children", []):
            if isinstance(child, tuple):
                name = child[0].split("__")[0]
                if name in attrs:
                    return name
            else:
                stack.append(child)
    return ""


if TYPE_CHECKING:
    _SerializerBase = serializers.Serializer[Any]
else:
    _SerializerBase = object


class BoundedInputMixin(_SerializerBase):
    """
    Adds range checks to the serializer's writable integer, date and datetime fields and, on a
    ModelSerializer, checks the model's CheckConstraints before saving, so a rule the database holds is
    a 400 with the field's path instead of an IntegrityError.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for name, field in fields.items():
            if field.read_only:
                continue
            if isinstance(field, serializers.IntegerField):
                _integer_bounds(field, *_column_range(self, name, field))
            elif isinstance(field, (serializers.DateTimeField, serializers.DateField)):
                field.validators.append(date_in_range)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = getattr(getattr(self, "Meta", None), "model", None)
        if model is None:
            return attrs
        current = getattr(self, "instance", None)
        instance = copy.copy(current) if current is not None else model()
        concrete = {field.name for field in model._meta.concrete_fields}
        for name, value in attrs.items():
            if name in concrete:
                setattr(instance, name, value)
        errors: dict[str, list[str]] = {}
        for constraint in model._meta.constraints:
            if not isinstance(constraint, CheckConstraint):
                continue
            try:
                constraint.validate(model, instance)
            except ValidationError as error:
                errors.setdefault(_constraint_path(constraint.condition, attrs) or "non_field_errors", []).extend(
                    error.messages
                )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def bound_form_fields(form: forms.Form) -> None:
    """Range checks for the fields of a FilterSet's form (numbers are ids or counts: 64 bits)."""
    for field in form.fields.values():
        if isinstance(field, (forms.DecimalField, forms.IntegerField, forms.FloatField)):
            field.validators.extend([MinValueValidator(-BIGINT_MAX), MaxValueValidator(BIGINT_MAX)])
        elif isinstance(field, (forms.DateTimeField, forms.DateField)):
            field.validators.append(date_in_range)
        elif isinstance(field, forms.ModelChoiceField):
            field.to_python = _checked_pk(field.to_python)  # type: ignore[method-assign]  # wraps this field's own


def _checked_pk(to_python: Any) -> Any:
    """A model choice given by an out-of-range number is simply not a valid choice (not an overflow)."""

    def wrapped(value: Any) -> Any:
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            number = None
        if number is not None and number.is_finite() and abs(number) > BIGINT_MAX:
            raise ValidationError("Select a valid choice.", code="invalid_choice")
        return to_python(value)

    return wrapped
