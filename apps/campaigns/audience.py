"""
The hook through which segments use the shared condition language.

Campaigns sit below the automation engine and must not import it; `apps/campaigns/automation.py`
installs the engine's validator and SQL compiler here at start-up.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

# (condition) -> [(path, message)]
Validator = Callable[[Any], list[tuple[str, str]]]
# (condition, now) -> QuerySet[Customer]
Compiler = Callable[[Any, datetime], Any]

_validator: Validator | None = None
_compiler: Compiler | None = None


def install(*, validator: Validator, compiler: Compiler) -> None:
    global _validator, _compiler
    _validator, _compiler = validator, compiler


def validate(condition: Any) -> list[tuple[str, str]]:
    if _validator is None:
        raise RuntimeError("No condition validator installed (apps.campaigns.automation not loaded).")
    return _validator(condition)


def customers(condition: Any, *, now: datetime) -> Any:
    if _compiler is None:
        raise RuntimeError("No condition compiler installed (apps.campaigns.automation not loaded).")
    return _compiler(condition, now)
