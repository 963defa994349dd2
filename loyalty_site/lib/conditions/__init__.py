"""
The condition language, a model-free library under every app (DESIGN.md, "The condition language"):
the field catalog (`catalog`), validation against it (`validation`), the in-memory evaluator for one
event (`evaluation`), the SQL compiler for audiences (`compilation`, over a Customer queryset the
caller hands in), value coercion (`values`), operators (`operators`), the evaluation context
(`context`) and dynamic parameters in texts (`templating`).

Each app registers the fields it offers in its own `apps/<app>/fields.py`; nothing here imports an app.
"""

from .catalog import FieldSpec, catalog_describe, field_get, fields_all, register_field
from .compilation import ConditionNotCompilable, audience_queryset, condition_compile
from .context import ConditionError, ConditionInvalid, Evaluation, EvaluationContext
from .evaluation import condition_evaluate, read_field
from .templating import template_render, template_validate
from .validation import MAX_DEPTH, MAX_NODES, condition_validate

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "ConditionError",
    "ConditionInvalid",
    "ConditionNotCompilable",
    "Evaluation",
    "EvaluationContext",
    "FieldSpec",
    "audience_queryset",
    "catalog_describe",
    "condition_compile",
    "condition_evaluate",
    "condition_validate",
    "field_get",
    "fields_all",
    "read_field",
    "register_field",
    "template_render",
    "template_validate",
]
