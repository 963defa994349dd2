"""
Bounds on nested JSON, checked BEFORE anything recurses into it (DESIGN.md §20, "Bounded input").

Python's `json` parser, `json.dumps` and every recursive walker (condition validation, definition
validation, the evaluators) would otherwise meet a document nested thousands of levels deep with a
RecursionError, i.e. a 500. Two checks, both linear and without recursion:

- `json_text_error(text, max_depth=...)` on raw JSON text, before it is parsed (the API parser and
  the admin's JSON form fields);
- `json_value_error(value, max_depth=..., max_nodes=...)` on an already-parsed value (services that
  receive Python objects from any caller).

Each returns `None` or a `JsonLimitError` naming the JSON path where the limit was crossed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Deeper than any valid workflow definition (10 nested if-steps, each with a condition nested 10
# levels), far below Python's recursion limit.
MAX_JSON_DEPTH = 100

# Strings (with their escapes) whole, or one structural character: the scan is one pass of a
# non-backtracking pattern over the text.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)


@dataclass(frozen=True)
class JsonLimitError:
    """Where (JSON path) and why a document is refused."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _path(frames: list[list[Any]]) -> str:
    path = ""
    for frame in frames:
        if frame[1] is not None:
            path = _join(path, frame[1])
    return path


def _depth_message(max_depth: int) -> str:
    return f"nested deeper than {max_depth} levels"


def json_text_error(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> JsonLimitError | None:
    """The first place where the JSON `text` nests deeper than `max_depth` objects/arrays, else None."""
    if text.count("{") + text.count("[") <= max_depth:
        return None  # cannot be deeper than the number of openers (the common, small case)
    # One frame per open container: [kind, current key or index].
    frames: list[list[Any]] = []
    last_string: str | None = None
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "{[":
            if len(frames) >= max_depth:
                return JsonLimitError(_path(frames), _depth_message(max_depth))
            frames.append([token, 0 if token == "[" else None])
        elif token in "}]":
            if frames:
                frames.pop()
        elif token == ",":
            if frames and frames[-1][0] == "[":
                frames[-1][1] += 1
        elif token == ":":
            if frames and frames[-1][0] == "{" and last_string is not None:
                frames[-1][1] = last_string
        else:  # a string: remember it, it may be the key of the next ":"
            try:
                last_string = json.loads(token)
            except ValueError:
                last_string = token[1:-1]
            continue
        last_string = None
    return None


def json_value_error(
    value: Any, *, max_depth: int = MAX_JSON_DEPTH, max_nodes: int | None = None, path: str = ""
) -> JsonLimitError | None:
    """The first place where a parsed JSON value nests deeper than `max_depth` or holds more than `max_nodes`."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    nodes = 0
    while stack:
        item, item_path, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth >= max_depth:
            return JsonLimitError(item_path, _depth_message(max_depth))
        nodes += 1
        if max_nodes is not None and nodes > max_nodes:
            return JsonLimitError(item_path, f"more than {max_nodes} objects and lists")
        children = item.items() if isinstance(item, dict) else enumerate(item)
        # Reversed so the walk goes depth-first in document order and reports the first offending path.
        for key, child in reversed(list(children)):
            if isinstance(child, (dict, list)):
                stack.append((child, _join(item_path, key), depth + 1))
    return None
