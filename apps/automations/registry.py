"""
The engine's registration API for triggers and actions. Each app declares what it offers in its own
`automation.py` (auto-discovered at start-up) with `register_trigger` / `register_action`.

An action's `run(context, params, effect_key) -> dict` receives the condition-language EvaluationContext
(customer, order, ..., `extra` holding `run_id` and `cause`), its params with dynamic parameters already
rendered, and a key unique per (run, step) that it may use to make its effect idempotent. It returns the
outcome recorded on the step row. A transient failure (a 5xx, a timeout) raises `TransientActionError`:
the run is retried with backoff; any other exception fails the run.

An outcome with `"held_out": true` (see `held_out_reason`) says the customer is in the holdout of what the
step gives (a campaign measuring its lift): nothing was given, and the run stops there — the steps after it
(the e-mail announcing the code, ...) are not run, and the run is recorded skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ParamType = Literal["text", "text_list", "number", "integer", "boolean", "choice", "json", "url", "email"]
PARAM_TYPES: tuple[str, ...] = ("text", "text_list", "number", "integer", "boolean", "choice", "json", "url", "email")


class TransientActionError(Exception):
    """A failure worth retrying later (remote 5xx, timeout, connection refused)."""


class ActionRefused(Exception):
    """A permanent failure with a reason the marketer can act on (bad URL, unknown tier...)."""


def held_out_reason(outcome: Any) -> str:
    """The skip reason when an action's outcome says the customer is held out (else "")."""
    if not isinstance(outcome, dict) or outcome.get("held_out") is not True:
        return ""
    campaign = outcome.get("campaign")
    return f"held out of campaign “{campaign}”"[:255] if campaign else "held out by an action"


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    label: str
    description: str = ""
    # Which catalog scopes (customer, order, line, product, cart, draft_order, event, store, location)
    # conditions and dynamic parameters may use under this trigger.
    scopes: tuple[str, ...] = ("customer",)
    group: str = "Customers"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ParamType = "text"
    label: str = ""
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] | list[str] = ()
    # Whether string values may hold {{ dynamic parameters }}.
    dynamic: bool = False
    # A secret (a signing key): encrypted at rest, write-only, redacted wherever a definition, a step's
    # inputs or a trace is shown (`secret_params`); the action's `run` reads it with `secret_reveal`.
    secret: bool = False
    # Extra checks at save time, after the type check: value -> messages (e.g. a webhook URL's address).
    check: Callable[[Any], list[str]] | None = None


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str
    description: str = ""
    params: list[ParamSpec] = field(default_factory=list)
    run: Callable[[Any, dict[str, Any], str], dict[str, Any]] | None = None
    # Optional set-based `run` for a batch of runs at the same step (issue 12): (contexts, params, effect keys)
    # -> one outcome per run, the same as `run` would return for each. Called inside the batch's transaction;
    # any error makes the engine redo those runs one by one with `run`, so it need not isolate failures.
    run_many: Callable[[list[Any], list[dict[str, Any]], list[str]], list[dict[str, Any]]] | None = None
    # Describes the effect without doing it (test runs); defaults to echoing the rendered params.
    preview: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    group: str = ""
    # True: the action only writes to this database; it runs in one transaction with its ledger row and
    # step row (exactly once). False (e-mail, webhooks): slow I/O runs outside any transaction.
    transactional: bool = True
    # Save-time checks across params (e.g. "a template, or subject and body"): params -> (param, message).
    validate: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None

    def param(self, name: str) -> ParamSpec | None:
        return next((param for param in self.params if param.name == name), None)


_triggers: dict[str, TriggerSpec] = {}
_actions: dict[str, ActionSpec] = {}


def register_trigger(spec: TriggerSpec) -> TriggerSpec:
    _triggers[spec.name] = spec
    return spec


def register_action(spec: ActionSpec) -> ActionSpec:
    _actions[spec.name] = spec
    return spec


def triggers_all() -> list[TriggerSpec]:
    return list(_triggers.values())


def actions_all() -> list[ActionSpec]:
    return list(_actions.values())


def trigger_get(name: str) -> TriggerSpec | None:
    return _triggers.get(name)


def action_get(name: str) -> ActionSpec | None:
    return _actions.get(name)


def registry_describe() -> dict[str, Any]:
    """Triggers and actions as JSON (the builder and /api/v1/workflow-fields/)."""
    return {
        "triggers": [
            {
                "name": spec.name,
                "label": spec.label,
                "description": spec.description,
                "scopes": list(spec.scopes),
                "group": spec.group,
            }
            for spec in _triggers.values()
        ],
        "actions": [
            {
                "name": spec.name,
                "label": spec.label,
                "description": spec.description,
                "group": spec.group,
                "params": [
                    {
                        "name": param.name,
                        "type": param.type,
                        "label": param.label or param.name,
                        "required": param.required,
                        "help": param.help,
                        "choices": list(param.choices),
                        "dynamic": param.dynamic,
                    }
                    for param in spec.params
                ],
            }
            for spec in _actions.values()
        ],
    }
