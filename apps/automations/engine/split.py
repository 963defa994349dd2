"""
The A/B `split` step's assignment, shared by execution, the dry-run trace and bulk runs: a customer's branch
is a pure function of the workflow, the step and the customer (loyalty_site/lib/split.py), so a retried or
resumed run, a test run and a report all agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loyalty_site.lib.split import branch_index, bucket, split_salt


@dataclass(frozen=True)
class SplitChoice:
    index: int
    name: str
    percent: int
    bucket: int

    @property
    def branch(self) -> str:
        """The walker's branch key: the steps of this branch."""
        return f"split[{self.index}].steps"


def split_choose(step: dict[str, Any], path: str, *, workflow_id: int | None, customer_id: int) -> SplitChoice:
    branches = step["split"]
    salt = split_salt(workflow_id, step, path)
    index = branch_index(salt, customer_id, [branch["percent"] for branch in branches])
    return SplitChoice(index, str(branches[index]["name"]), int(branches[index]["percent"]), bucket(salt, customer_id))


def split_partition(step: dict[str, Any], path: str, *, workflow_id: int | None, ids: list[int]) -> list[list[int]]:
    """A set of customer ids cut into the split's branches (bulk runs), in branch order."""
    branches = step["split"]
    salt = split_salt(workflow_id, step, path)
    percents = [branch["percent"] for branch in branches]
    parts: list[list[int]] = [[] for _ in branches]
    for pk in ids:
        parts[branch_index(salt, pk, percents)].append(pk)
    return parts


def split_inputs(step: dict[str, Any]) -> dict[str, Any]:
    return {"split": [{"name": branch["name"], "percent": branch["percent"]} for branch in step["split"]]}
