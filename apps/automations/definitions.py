"""
Validation and walking of workflow definitions:

    {"schema": 1,
     "trigger": {"event": "order.created", "where": <condition or null>},
     "steps": [<step>, ...]}

A step is one of (each with an optional unique "id"):
    {"id": "s1", "if": <condition>, "then": [<step>...], "else": [<step>...]}
    {"id": "s2", "action": "customer.add_tags", "params": {...}}
    {"id": "s3", "wait": {"minutes"|"hours"|"days": N}}  or  {"wait": {"until_time": "09:00", "weekdays": [0, 4]}}
    {"id": "s4", "split": [{"name": "A", "percent": 50, "steps": [...]}, {"name": "B", "percent": 50, "steps": [...]}]}
      (an A/B split: each customer goes down one named branch, stable per customer; percents add up to 100)

A **state tag** (trigger `customer.state_tag`) keeps a tag on exactly the customers matching
`trigger.where` (an audience condition over customer fields), optionally in a mutually exclusive group:
    {"schema": 1, "trigger": {"event": "customer.state_tag", "where": <condition>},
     "state": {"tag": "High value", "group": "Spend tier", "rank": 3},
     "steps": [<steps run when a customer enters>], "left": [<steps run when a customer leaves>]}

Every error names its JSON path (`steps[0].then[1].params.tags[0]`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from loyalty_site.lib.conditions import condition_validate, template_validate
from loyalty_site.lib.conditions.templating import MAX_TEMPLATE_TEXT
from loyalty_site.lib.json_limits import MAX_JSON_DEPTH, json_value_error

from . import registry

SCHEMA_VERSION = 1
MAX_STEPS = 200
MAX_NESTING = 10
MAX_WAIT = timedelta(days=365)
# Checked on the whole document before anything walks it recursively (a valid definition is far smaller).
MAX_DEFINITION_DEPTH = MAX_JSON_DEPTH
MAX_DEFINITION_NODES = 100_000
MAX_PARAM_TEXT = MAX_TEMPLATE_TEXT
WAIT_UNITS = {"minutes": 1, "hours": 60, "days": 1440}
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
STEP_KINDS = ("if", "action", "wait", "split")
MAX_SPLIT_BRANCHES = 10
MAX_BRANCH_NAME = 40
STATE_TRIGGER = "customer.state_tag"
MAX_GROUP_NAME = 64
MAX_RANK = 1_000_000


@dataclass(frozen=True)
class DefinitionError:
    """One problem in a definition or its settings (same shape as the condition language's ConditionError)."""

    path: str
    message: str


def _condition_errors(condition: Any, *, path: str, scopes: tuple[str, ...]) -> list[Any]:
    return list(condition_validate(condition, path=path, scopes=scopes))


def _template_errors(text: str, *, path: str, scopes: tuple[str, ...]) -> list[Any]:
    return list(template_validate(text, path=path, scopes=scopes))


def trigger_scopes(trigger: str) -> tuple[str, ...]:
    spec = registry.trigger_get(trigger)
    return tuple(spec.scopes) if spec else ("customer",)


def definition_validate(definition: Any, *, trigger: str | None = None) -> list[Any]:
    """
    Every error of a definition, each with `path` and `message`; [] when it is valid. `trigger`, when
    given, must match `definition.trigger.event`.
    """
    if not isinstance(definition, dict):
        return [DefinitionError("", "The definition must be a JSON object.")]
    limit = json_value_error(definition, max_depth=MAX_DEFINITION_DEPTH, max_nodes=MAX_DEFINITION_NODES)
    if limit is not None:
        return [DefinitionError(limit.path, f"The definition is {limit.message}.")]
    errors: list[Any] = []
    trigger_event = definition["trigger"].get("event") if isinstance(definition.get("trigger"), dict) else None
    is_state = trigger_event == STATE_TRIGGER
    unknown = sorted(set(definition) - {"schema", "trigger", "steps", *(("state", "left") if is_state else ())})
    errors += [DefinitionError(key, "Unknown key.") for key in unknown]
    if definition.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        errors.append(DefinitionError("schema", f"Only schema {SCHEMA_VERSION} is supported."))
    trigger_block = definition.get("trigger")
    event = None
    if not isinstance(trigger_block, dict):
        errors.append(DefinitionError("trigger", 'A trigger {"event": ...} is required.'))
    else:
        event = trigger_block.get("event")
        errors += [
            DefinitionError(f"trigger.{key}", "Unknown key.") for key in sorted(set(trigger_block) - {"event", "where"})
        ]
        if not isinstance(event, str) or not event:
            errors.append(DefinitionError("trigger.event", "Choose a trigger."))
            event = None
        elif registry.trigger_get(event) is None:
            errors.append(DefinitionError("trigger.event", f"Unknown trigger {event!r}."))
            event = None
        elif trigger and trigger != event:
            errors.append(DefinitionError("trigger.event", f"Expected trigger {trigger!r}."))
    scopes = trigger_scopes(event) if event else ("customer",)
    if is_state and event:
        errors += _state_validate(definition, scopes=scopes)
    elif isinstance(trigger_block, dict) and trigger_block.get("where") is not None:
        errors += _condition_errors(trigger_block["where"], path="trigger.where", scopes=scopes)
    steps = definition.get("steps", [])
    if not isinstance(steps, list):
        errors.append(DefinitionError("steps", "Steps must be a list."))
        return errors
    state: dict[str, Any] = {"count": 0, "ids": set()}
    errors += _steps_validate(steps, path="steps", scopes=scopes, depth=1, state=state)
    if is_state and "left" in definition:
        if isinstance(definition["left"], list):
            errors += _steps_validate(definition["left"], path="left", scopes=scopes, depth=1, state=state)
        else:
            errors.append(DefinitionError("left", "Steps must be a list."))
    if state["count"] > MAX_STEPS:
        errors.append(DefinitionError("steps", f"At most {MAX_STEPS} steps."))
    return errors


def _state_validate(definition: dict, *, scopes: tuple[str, ...]) -> list[Any]:
    """A state tag: its condition must compile to SQL (the time pass), its tag is a name (or a template)."""
    errors: list[Any] = []
    where = definition["trigger"].get("where")
    if where is None:
        errors.append(DefinitionError("trigger.where", "A state tag needs the condition its customers match."))
    else:
        errors += list(condition_validate(where, path="trigger.where", scopes=scopes, audience=True))
    block = definition.get("state")
    if not isinstance(block, dict):
        return [*errors, DefinitionError("state", 'A state tag needs {"tag": ...}.')]
    errors += [DefinitionError(f"state.{key}", "Unknown key.") for key in sorted(set(block) - {"tag", "group", "rank"})]
    tag = block.get("tag")
    if not isinstance(tag, str) or not tag.strip():
        errors.append(DefinitionError("state.tag", "Name the tag its customers carry."))
    elif len(tag) > 100 and "{{" not in tag:
        errors.append(DefinitionError("state.tag", "A tag name has at most 100 characters."))
    elif "{{" in tag or "}}" in tag:
        errors += _template_errors(tag, path="state.tag", scopes=scopes)
    group = block.get("group")
    if group not in (None, ""):
        if not isinstance(group, str) or len(group) > MAX_GROUP_NAME:
            errors.append(
                DefinitionError("state.group", f"A group name is text of at most {MAX_GROUP_NAME} characters.")
            )
        elif isinstance(tag, str) and "{{" in tag:
            errors.append(DefinitionError("state.tag", "A state tag in an exclusive group has a fixed name."))
        rank = block.get("rank")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= MAX_RANK:
            errors.append(DefinitionError("state.rank", "A whole number from 0: the highest matching rank wins."))
    return errors


def _steps_validate(steps: list, *, path: str, scopes: tuple[str, ...], depth: int, state: dict) -> list[Any]:
    errors: list[Any] = []
    if depth > MAX_NESTING:
        return [DefinitionError(path, f"Steps nest at most {MAX_NESTING} levels deep.")]
    for index, step in enumerate(steps):
        state["count"] += 1
        errors += _step_validate(step, path=f"{path}[{index}]", scopes=scopes, depth=depth, state=state)
    return errors


def _step_validate(step: Any, *, path: str, scopes: tuple[str, ...], depth: int, state: dict) -> list[Any]:
    if not isinstance(step, dict):
        return [DefinitionError(path, "A step must be a JSON object.")]
    errors: list[Any] = []
    step_id = step.get("id")
    if step_id is not None:
        if not isinstance(step_id, str) or not step_id or len(step_id) > 64:
            errors.append(DefinitionError(f"{path}.id", "A step id is a non-empty string of at most 64 characters."))
        elif step_id in state["ids"]:
            errors.append(DefinitionError(f"{path}.id", f"Duplicate step id {step_id!r}."))
        else:
            state["ids"].add(step_id)
    kinds = [kind for kind in STEP_KINDS if kind in step]
    if len(kinds) != 1:
        return [*errors, DefinitionError(path, 'A step has exactly one of "if", "action", "wait" or "split".')]
    kind = kinds[0]
    allowed = {
        "id",
        "comment",
        *{"if": ("if", "then", "else"), "action": ("action", "params"), "wait": ("wait",), "split": ("split",)}[kind],
    }
    errors += [DefinitionError(f"{path}.{key}", "Unknown key.") for key in sorted(set(step) - allowed)]
    if kind == "if":
        errors += _condition_errors(step["if"], path=f"{path}.if", scopes=scopes)
        for branch in ("then", "else"):
            children = step.get(branch, [])
            if not isinstance(children, list):
                errors.append(DefinitionError(f"{path}.{branch}", "A branch is a list of steps."))
                continue
            errors += _steps_validate(children, path=f"{path}.{branch}", scopes=scopes, depth=depth + 1, state=state)
    elif kind == "split":
        errors += _split_validate(step["split"], path=f"{path}.split", scopes=scopes, depth=depth, state=state)
    elif kind == "action":
        errors += _action_validate(step, path=path, scopes=scopes)
    else:
        errors += wait_validate(step["wait"], path=f"{path}.wait")
    return errors


def _split_validate(branches: Any, *, path: str, scopes: tuple[str, ...], depth: int, state: dict) -> list[Any]:
    """An A/B split: 2 to 10 branches with unique names and whole percents (1-99) that add up to 100."""
    if not isinstance(branches, list) or not 2 <= len(branches) <= MAX_SPLIT_BRANCHES:
        return [DefinitionError(path, f"A split has 2 to {MAX_SPLIT_BRANCHES} branches.")]
    errors: list[Any] = []
    names: set[str] = set()
    total = 0
    for index, branch in enumerate(branches):
        branch_path = f"{path}[{index}]"
        if not isinstance(branch, dict):
            errors.append(DefinitionError(branch_path, 'A branch is {"name", "percent", "steps"}.'))
            continue
        errors += [
            DefinitionError(f"{branch_path}.{key}", "Unknown key.")
            for key in sorted(set(branch) - {"name", "percent", "steps"})
        ]
        name = branch.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_BRANCH_NAME:
            errors.append(
                DefinitionError(f"{branch_path}.name", f"A branch name of 1 to {MAX_BRANCH_NAME} characters.")
            )
        elif name.strip().lower() in names:
            errors.append(DefinitionError(f"{branch_path}.name", f"Two branches are named {name!r}."))
        else:
            names.add(name.strip().lower())
        percent = branch.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
            errors.append(DefinitionError(f"{branch_path}.percent", "A whole percent from 1 to 99."))
        else:
            total += percent
        children = branch.get("steps", [])
        if not isinstance(children, list):
            errors.append(DefinitionError(f"{branch_path}.steps", "A branch is a list of steps."))
            continue
        errors += _steps_validate(children, path=f"{branch_path}.steps", scopes=scopes, depth=depth + 1, state=state)
    if not errors and total != 100:
        errors.append(DefinitionError(path, f"The branches' percents add up to {total}; they must add up to 100."))
    return errors


def _action_validate(step: dict, *, path: str, scopes: tuple[str, ...]) -> list[Any]:
    name = step["action"]
    spec = registry.action_get(name) if isinstance(name, str) else None
    if spec is None:
        return [DefinitionError(f"{path}.action", f"Unknown action {name!r}.")]
    params = step.get("params", {})
    if not isinstance(params, dict):
        return [DefinitionError(f"{path}.params", "Params must be a JSON object.")]
    errors: list[Any] = []
    known = {param.name for param in spec.params}
    errors += [DefinitionError(f"{path}.params.{key}", "Unknown parameter.") for key in sorted(set(params) - known)]
    for param in spec.params:
        param_path = f"{path}.params.{param.name}"
        value = params.get(param.name)
        if value is None or value == "" or value == []:
            if param.required:
                errors.append(DefinitionError(param_path, "This parameter is required."))
            continue
        problems = param_validate(param, value, path=param_path, scopes=scopes)
        if not problems and param.check is not None:  # the action's own save-time checks (webhook URL, secret)
            problems = [DefinitionError(param_path, message) for message in param.check(value)]
        errors += problems
    if not errors and spec.validate is not None:
        errors += [DefinitionError(f"{path}.params.{name}", message) for name, message in spec.validate(params)]
    return errors


def param_validate(param: registry.ParamSpec, value: Any, *, path: str, scopes: tuple[str, ...]) -> list[Any]:
    """Type-check one action parameter; strings of dynamic params are checked against the catalog."""
    kind = param.type

    def text(item: Any, item_path: str) -> list[Any]:
        if not isinstance(item, str):
            return [DefinitionError(item_path, "Must be text.")]
        if len(item) > MAX_PARAM_TEXT:
            return [DefinitionError(item_path, f"At most {MAX_PARAM_TEXT} characters.")]
        if "{{" in item or "}}" in item:
            if not param.dynamic:
                return [DefinitionError(item_path, "This parameter does not accept dynamic parameters.")]
            return _template_errors(item, path=item_path, scopes=scopes)
        return []

    if kind == "text_list":
        if isinstance(value, str):
            return text(value, path)
        if not isinstance(value, list):
            return [DefinitionError(path, "Must be a list of text.")]
        out: list[Any] = []
        for index, item in enumerate(value):
            out += text(item, f"{path}[{index}]")
        return out
    if kind in ("text", "url", "email"):
        errors = text(value, path)
        if errors or "{{" in value:
            return errors
        if kind == "url" and not re.match(r"^https?://[^\s/]+", value):
            return [DefinitionError(path, "Must be an http(s) URL.")]
        if kind == "email" and not re.match(r"^[^@\s]+@[^@\s]+$", value):
            return [DefinitionError(path, "Must be an e-mail address.")]
        return []
    if kind == "choice":
        if value not in param.choices:
            return [DefinitionError(path, f"Choose one of {', '.join(map(str, param.choices))}.")]
        return []
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [DefinitionError(path, "Must be a whole number.")]
        return []
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return [DefinitionError(path, "Must be a number.")]
        try:
            float(value)
        except ValueError:
            return [DefinitionError(path, "Must be a number.")]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [DefinitionError(path, "Must be true or false.")]
    return []  # json: anything JSON


def wait_validate(wait: Any, *, path: str) -> list[Any]:
    if not isinstance(wait, dict) or not wait:
        return [DefinitionError(path, 'A wait is {"minutes"|"hours"|"days": N} or {"until_time": "HH:MM"}.')]
    if "until_time" in wait:
        errors: list[Any] = [
            DefinitionError(f"{path}.{k}", "Unknown key.") for k in sorted(set(wait) - {"until_time", "weekdays"})
        ]
        if not isinstance(wait["until_time"], str) or not TIME_OF_DAY.match(wait["until_time"]):
            errors.append(DefinitionError(f"{path}.until_time", "A time of day as HH:MM (24h)."))
        weekdays = wait.get("weekdays")
        if weekdays is not None and (
            not isinstance(weekdays, list)
            or not weekdays
            or any(isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6 for day in weekdays)
        ):
            errors.append(DefinitionError(f"{path}.weekdays", "Weekdays are numbers 0 (Monday) to 6 (Sunday)."))
        return errors
    units = [unit for unit in wait if unit in WAIT_UNITS]
    errors = [DefinitionError(f"{path}.{k}", "Unknown key.") for k in sorted(set(wait) - set(WAIT_UNITS))]
    if len(units) != 1:
        return [*errors, DefinitionError(path, "Give exactly one of minutes, hours or days.")]
    amount = wait[units[0]]
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        return [*errors, DefinitionError(f"{path}.{units[0]}", "A whole number of at least 1.")]
    if timedelta(minutes=amount * WAIT_UNITS[units[0]]) > MAX_WAIT:
        errors.append(DefinitionError(f"{path}.{units[0]}", "A wait lasts at most 365 days."))
    return errors


def step_at(definition: dict, path: str) -> dict | None:
    """The step at `path` ("steps[0].then[1]") or None."""
    node: Any = definition
    for key, index in re.findall(r"(\w+)\[(\d+)\]", path):
        try:
            node = node[key][int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return node if isinstance(node, dict) else None


def steps_walk(steps: list, path: str = "steps") -> Iterator[tuple[str, dict]]:
    """Every step with its path, depth first."""
    for index, step in enumerate(steps):
        step_path = f"{path}[{index}]"
        yield step_path, step
        if isinstance(step, dict) and "if" in step:
            for branch in ("then", "else"):
                yield from steps_walk(step.get(branch) or [], f"{step_path}.{branch}")
        if isinstance(step, dict) and isinstance(step.get("split"), list):
            for index, branch_def in enumerate(step["split"]):
                if isinstance(branch_def, dict):
                    yield from steps_walk(branch_def.get("steps") or [], f"{step_path}.split[{index}].steps")
