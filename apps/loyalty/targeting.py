"""
The hook through which earning rules are evaluated with the shared condition language.

Loyalty sits below the automation engine and must not import it; the engine's evaluator is installed
into this slot at start-up by `apps/loyalty/automation.py`. Until then, a rule with conditions never
matches (fail closed: an unevaluated condition must not hand out points).
"""

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# (condition JSON, context {"customer", "order", "event", "membership", "tier", "at"}) -> bool
ConditionEvaluator = Callable[[dict[str, Any], dict[str, Any]], bool]

_evaluator: ConditionEvaluator | None = None


def evaluator_install(evaluator: ConditionEvaluator | None) -> None:
    global _evaluator
    _evaluator = evaluator


def evaluator_installed() -> bool:
    return _evaluator is not None


def condition_matches(condition: dict[str, Any] | None, *, context: dict[str, Any]) -> bool:
    if not condition:
        return True
    if _evaluator is None:
        logger.warning("loyalty: no condition evaluator installed; rule conditions do not match")
        return False
    try:
        return bool(_evaluator(condition, context))
    except Exception:
        # A broken rule must not stop the order's base earning: it simply does not match, loudly.
        logger.exception("loyalty: rule condition could not be evaluated: %r", condition)
        return False
