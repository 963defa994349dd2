"""
Secret action params (ParamSpec(secret=True), e.g. a webhook's signing secret) in workflow definitions.

- At rest a secret is `encrypted:v1:…` (loyalty_site.lib.crypto): `definition_seal` encrypts the
  plaintext a marketer or integrator typed when a definition is saved.
- Write-only: every definition, run step input and test-run trace shown to anyone carries `REDACTED`
  instead (`definition_redact`, `params_redact`). Sending `REDACTED` back keeps the stored secret of that
  step (matched by step id, else by path), so a definition read and saved again keeps its secrets.
- Only the action itself reads the plaintext (`secret_reveal`), in the worker, at send time.
"""

from __future__ import annotations

import copy
from typing import Any

from loyalty_site.lib.crypto import SecretUnreadable, is_encrypted, secret_decrypt, secret_encrypt

from . import registry
from .definitions import DefinitionError, steps_walk

REDACTED = "whsec_…redacted"


def _secret_names(action: Any) -> tuple[str, ...]:
    spec = registry.action_get(action) if isinstance(action, str) else None
    return tuple(param.name for param in spec.params if param.secret) if spec else ()


def _action_steps(definition: Any) -> list[tuple[str, dict, tuple[str, ...]]]:
    if not isinstance(definition, dict) or not isinstance(definition.get("steps"), list):
        return []
    found = []
    for path, step in steps_walk(definition["steps"]):
        if isinstance(step, dict) and isinstance(step.get("params"), dict):
            names = _secret_names(step.get("action"))
            if names:
                found.append((path, step, names))
    return found


def _step_key(path: str, step: dict) -> str:
    step_id = step.get("id")
    return f"id:{step_id}" if isinstance(step_id, str) and step_id else f"path:{path}"


def params_redact(spec: registry.ActionSpec | None, params: dict[str, Any]) -> dict[str, Any]:
    """The params as they may be shown: every secret that is set reads `REDACTED`."""
    if spec is None or not isinstance(params, dict):
        return params
    secret = {param.name for param in spec.params if param.secret}
    return {name: (REDACTED if name in secret and value not in (None, "") else value) for name, value in params.items()}


def definition_redact(definition: Any) -> Any:
    """A copy of the definition with every secret param replaced by `REDACTED` (the input is not changed)."""
    steps = _action_steps(definition)
    if not steps:
        return definition
    shown = copy.deepcopy(definition)
    for path, _, names in _action_steps(shown):
        step = _step_at(shown, path)
        for name in names:
            if step["params"].get(name) not in (None, ""):
                step["params"][name] = REDACTED
    return shown


def _step_at(definition: dict, path: str) -> dict:
    return next(step for step_path, step in steps_walk(definition["steps"]) if step_path == path)


def definition_seal(definition: Any, *, previous: Any = None) -> tuple[Any, list[DefinitionError]]:
    """
    The definition as stored: plaintext secrets encrypted, `REDACTED` replaced by the secret stored for
    the same step in `previous`, ciphertext of this install kept. An unchanged plaintext keeps its stored
    ciphertext (Fernet is randomised), so saving again is not an edit. Returns (definition, errors).
    """
    steps = _action_steps(definition)
    if not steps:
        return definition, []
    stored: dict[tuple[str, str], str] = {}
    for path, step, names in _action_steps(previous):
        for name in names:
            if is_encrypted(step["params"].get(name)):
                stored[(_step_key(path, step), name)] = step["params"][name]
    sealed = copy.deepcopy(definition)
    errors: list[DefinitionError] = []
    for path, step, names in _action_steps(sealed):
        for name in names:
            value = step["params"].get(name)
            if value in (None, ""):
                continue
            param_path = f"{path}.params.{name}"
            kept = stored.get((_step_key(path, step), name))
            if value == REDACTED:
                if kept is None:
                    errors.append(DefinitionError(param_path, "Type the secret: there is no stored one to keep."))
                else:
                    step["params"][name] = kept
            elif is_encrypted(value):
                try:
                    secret_decrypt(value)
                except SecretUnreadable:
                    errors.append(DefinitionError(param_path, "This encrypted value cannot be read here."))
            elif isinstance(value, str):
                step["params"][name] = kept if _same_secret(kept, value) else secret_encrypt(value)
    return sealed, errors


def _same_secret(stored: str | None, plaintext: str) -> bool:
    if stored is None:
        return False
    try:
        return secret_decrypt(stored) == plaintext
    except SecretUnreadable:
        return False


def secret_reveal(value: Any) -> str:
    """The plaintext of a stored secret param (a plaintext left by an older version is returned as is)."""
    if is_encrypted(value):
        return secret_decrypt(value)
    return str(value)
