"""
The condition language, a model-free library under every app (DESIGN.md, "The condition language"):
the field catalog (`catalog`), per-customer figures over rows (`figures`: windowed counts and sums, read
for one customer, a batch, or set based for an audience), validation against it (`validation`), the
in-memory evaluator for one event (`evaluation`), the SQL compiler for audiences (`compilation`, over a
Customer queryset the caller hands in), value coercion (`values`), operators (`operators`), the
evaluation context (`context`) and dynamic parameters in texts (`templating`).

Each app registers the fields it offers in its own `apps/<app>/fields.py`; nothing here imports an app.
"""

from .catalog import FieldSpec, catalog_describe, field_get, fields_all, register_field
from .compilation import ConditionNotCompilable, audience_queryset, condition_compile
from .context import ConditionError, ConditionInvalid, Evaluation, EvaluationContext
from .evaluation import Predicate, condition_evaluate, condition_predicate, figures_prefetch, read_field
from .figures import Figure, IdIn, Scope, figure_of, figures_of
from .templating import template_render, template_render_text, template_validate
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
    "Figure",
    "IdIn",
    "Predicate",
    "Scope",
    "audience_queryset",
    "catalog_describe",
    "condition_compile",
    "condition_evaluate",
    "condition_predicate",
    "condition_validate",
    "field_get",
    "fields_all",
    "figure_of",
    "figures_of",
    "figures_prefetch",
    "read_field",
    "register_field",
    "template_render",
    "template_render_text",
    "template_validate",
]
