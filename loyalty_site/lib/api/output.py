"""
Output serializers on hot paths. A `ModelSerializer` introspects its model and builds its fields anew for every
instance it serializes (about a tenth of a single-event POST's web CPU, issue 12); a read-only one gets the same
fields every time, so `FieldsBuiltOnceMixin` builds them once per class and hands each instance a copy.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from rest_framework import serializers

if TYPE_CHECKING:
    _SerializerBase = serializers.ModelSerializer
else:
    _SerializerBase = object


class FieldsBuiltOnceMixin(_SerializerBase):
    """
    For read-only output serializers (every field read-only, checked on the first build): the fields built by
    `get_fields()` once per class, deep-copied per instance as DRF copies declared fields.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built: dict[str, serializers.Field] | None = cls.__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            writable = sorted(name for name, field in built.items() if not field.read_only)
            if writable:
                raise TypeError(f"{cls.__name__}: FieldsBuiltOnceMixin is for output only; writable: {writable}")
            cls._fields_built = built  # type: ignore[attr-defined]  # a per-class cache, set on first use
        return copy.deepcopy(built)
