"""
The condition language: validation against the field catalog, the in-memory evaluator (one event)
and the SQL compiler (audiences). See DESIGN.md, "The condition language".
"""

from .compilation import ConditionNotCompilable, audience_queryset, condition_compile
from .context import ConditionError, ConditionInvalid, Evaluation, EvaluationContext
from .evaluation import condition_evaluate
from .validation import MAX_DEPTH, MAX_NODES, condition_validate

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "ConditionError",
    "ConditionInvalid",
    "ConditionNotCompilable",
    "Evaluation",
    "EvaluationContext",
    "audience_queryset",
    "condition_compile",
    "condition_evaluate",
    "condition_validate",
]
