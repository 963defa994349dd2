"""
Stable random assignment of customers for A/B splits and holdouts (model-free).

A customer's bucket is a pure function of a salt (which workflow / step / campaign) and the customer id:
SHA-256 of "salt:id", first 8 bytes as an integer, modulo 10,000 (basis points). So the same customer always
lands in the same branch of the same split (a retried or resumed run, the dry run and a bulk run agree), two
splits with different salts are independent, and a report can recompute anyone's assignment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

BASIS_POINTS = 10_000


def bucket(salt: str, customer_id: int) -> int:
    """0 ≤ bucket < 10,000, uniform and stable for (salt, customer_id)."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BASIS_POINTS


def branch_index(salt: str, customer_id: int, percents: Sequence[int | float]) -> int:
    """Which of the branches (percent shares summing to 100) the customer falls in."""
    point = bucket(salt, customer_id)
    edge = 0.0
    for index, percent in enumerate(percents):
        edge += float(percent) * BASIS_POINTS / 100
        if point < edge:
            return index
    return len(percents) - 1


def held_out(salt: str, customer_id: int, percent: int | float | None) -> bool:
    """True for the stable `percent` share of customers that a holdout keeps from receiving anything."""
    if not percent:
        return False
    return bucket(f"holdout:{salt}", customer_id) < float(percent) * BASIS_POINTS / 100


def split_salt(workflow_id: int | None, step: dict, path: str) -> str:
    """The salt of a split step: its workflow and its id (or path when the step has no id)."""
    return f"split:{workflow_id or 0}:{step.get('id') or path}"


def workflow_holdout_salt(workflow_id: int) -> str:
    """The salt of a workflow's holdout (event runs and bulk runs hold out the same customers)."""
    return f"workflow:{workflow_id}"


def campaign_holdout_salt(campaign_id: int) -> str:
    """The salt of a promotion campaign's holdout (independent of every workflow's)."""
    return f"campaign:{campaign_id}"
