"""
The one step walker. Executing a run, the dry-run trace and a bulk run over sets of customers all walk a
definition's steps here, so paths (`steps[0].then[1]`), branches, waits and resume points mean the same
everywhere. What a step *does* belongs to the visitor:

- `condition(step, path, subject)` evaluates `step["if"]` and yields the branches to walk with their
  subjects: one branch for one customer (execution, trace), both with their customers for a bulk run;
- `split(step, path, subject)` assigns the A/B split's branches (`split[i].steps`) the same way: the one
  branch of one customer, every branch with its customers for a bulk run;
- `wait(step, path, subject)` parks the run (returns a `Wait`), notes the wait (trace) or refuses (bulk);
- `action(step, path, subject)` acts (execution, bulk) or says what it would do (trace);
- `resumed(step, path, subject)` closes the wait a resumed run sat on.

A failing step leaves its path on the exception (`step_path`), so a retry resumes at that very step: the
conditions above it are not evaluated again (their branch stays taken) and done actions stay done.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

Subject = TypeVar("Subject")


@dataclass
class Wait:
    """Where and until when a run parks."""

    path: str
    resume_at: datetime


class StepVisitor(Protocol, Generic[Subject]):
    def condition(self, step: dict[str, Any], path: str, subject: Subject) -> Iterable[tuple[str, Subject]]: ...

    def split(self, step: dict[str, Any], path: str, subject: Subject) -> Iterable[tuple[str, Subject]]: ...

    def wait(self, step: dict[str, Any], path: str, subject: Subject) -> Wait | None: ...

    def action(self, step: dict[str, Any], path: str, subject: Subject) -> None: ...

    def resumed(self, step: dict[str, Any], path: str, subject: Subject) -> None: ...


class _Resume:
    """Where a resumed/retried run picks up: the path of the wait it sat on or of the step that failed."""

    def __init__(self, path: str) -> None:
        self.path: str | None = path or None


# The branch a path continues into below a step: "then" / "else" of a condition, "split[2].steps" of a split.
BRANCH = re.compile(r"^(then|else|split\[\d+\]\.steps)\[")


def branch_steps(step: dict[str, Any], branch: str) -> list[dict[str, Any]]:
    """The steps of one branch of a condition (`then`, `else`) or of a split (`split[1].steps`)."""
    if branch.startswith("split["):
        branches = step.get("split") or []
        index = int(branch[len("split[") : branch.index("]")])
        return (branches[index].get("steps") or []) if index < len(branches) else []
    return step.get(branch) or []


def steps_walk(
    steps: list[dict[str, Any]],
    visitor: StepVisitor[Subject],
    subject: Subject,
    *,
    resume: str = "",
    prefix: str = "steps",
) -> Wait | None:
    """
    Walk `steps` (from the step at path `resume`, when given) until the end or a wait; returns the wait.
    `prefix` names the list in paths (`steps`, or `left` for a state tag's leaving steps).
    """
    return _walk(steps, prefix, visitor, subject, _Resume(resume))


def _walk(
    steps: list[dict[str, Any]], prefix: str, visitor: StepVisitor[Subject], subject: Subject, resume: _Resume
) -> Wait | None:
    for index, step in enumerate(steps):
        path = f"{prefix}[{index}]"
        if resume.path:
            if resume.path == path:
                resume.path = None
                if "wait" in step:
                    visitor.resumed(step, path, subject)
                    continue
                # the step that failed: run it again below
            elif resume.path.startswith(path + "."):
                found = BRANCH.match(resume.path[len(path) + 1 :])
                branch = found.group(1) if found else ""
                parked = _walk(branch_steps(step, branch), f"{path}.{branch}", visitor, subject, resume)
                if parked:
                    return parked
                continue
            else:
                continue  # done before the wait / the failed step
        parked = _step(step, path, visitor, subject, resume)
        if parked:
            return parked
    return None


def _step(
    step: dict[str, Any], path: str, visitor: StepVisitor[Subject], subject: Subject, resume: _Resume
) -> Wait | None:
    try:
        if "if" in step:
            for branch, branch_subject in visitor.condition(step, path, subject):
                parked = _walk(step.get(branch) or [], f"{path}.{branch}", visitor, branch_subject, resume)
                if parked:
                    return parked
            return None
        if "split" in step:
            for branch, branch_subject in visitor.split(step, path, subject):
                parked = _walk(branch_steps(step, branch), f"{path}.{branch}", visitor, branch_subject, resume)
                if parked:
                    return parked
            return None
        if "wait" in step:
            return visitor.wait(step, path, subject)
        visitor.action(step, path, subject)
        return None
    except Exception as error:
        if not getattr(error, "step_path", ""):
            error.step_path = path  # type: ignore[attr-defined]  # the innermost failing step
        raise
