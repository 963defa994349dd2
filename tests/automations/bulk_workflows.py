"""
The two scheduled (bulk-activity) workflows the bulk tests run: what the gallery's "inactive high-value" and
"spend tiers" templates were before they became state tags. The bulk engine still runs any such workflow.
"""

from decimal import Decimal
from typing import Any

from apps.automations.gallery import add_tags, definition, inactive_high_value_audience, money, remove_tags
from apps.automations.services import workflow_create

NAMES = {"inactive_high_value": "Tag inactive high-value customers", "spend_tiers": "Spend tiers"}


def _inactive_high_value(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "definition": definition(
            "customer.bulk_activity", [add_tags("s1", [p.get("tag", "Inactive high-value customer")])]
        ),
        "schedule_cron": p.get("schedule", "0 3 * * *"),
        "audience": inactive_high_value_audience(int(p.get("days", 30)), Decimal(str(p.get("min_spent", "500")))),
    }


def _spend_tiers(p: dict[str, Any]) -> dict[str, Any]:
    high, mid, low = "High value", "Mid value", "Low value"
    high_min, mid_min = Decimal(str(p.get("high_min", "1000"))), Decimal(str(p.get("mid_min", "300")))
    steps = [
        {
            "id": "s1",
            "if": {"field": "customer.total_spent", "op": "gte", "value": money(high_min)},
            "then": [add_tags("s2", [high]), remove_tags("s3", [mid, low])],
            "else": [
                {
                    "id": "s4",
                    "if": {"field": "customer.total_spent", "op": "gte", "value": money(mid_min)},
                    "then": [add_tags("s5", [mid]), remove_tags("s6", [high, low])],
                    "else": [add_tags("s7", [low]), remove_tags("s8", [high, mid])],
                }
            ],
        }
    ]
    return {
        "definition": definition("customer.bulk_activity", steps),
        "schedule_cron": p.get("schedule", "0 4 * * *"),
        "audience": {"field": "customer.orders_count", "op": "gte", "value": 1},
    }


def bulk_workflow_create(key: str, params: dict[str, Any] | None = None, *, user: Any = None, name: str | None = None):
    """A draft bulk-activity workflow like the old gallery template `key` with `params`."""
    built = {"inactive_high_value": _inactive_high_value, "spend_tiers": _spend_tiers}[key](dict(params or {}))
    return workflow_create(name=name or NAMES[key], user=user, **built)
