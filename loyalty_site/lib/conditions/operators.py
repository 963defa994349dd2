"""Text helpers shared by both evaluators (the same regex runs in Python, SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A word boundary is any character that is not an ASCII letter or digit (or the start / end of the
# text): "her" matches "for her!" but neither "Hermes" nor "Mother's". The pattern uses only syntax
# that Python's `re` (SQLite's REGEXP in Django) and PostgreSQL's `~*` read the same way.
_BOUNDARY_BEFORE = "(^|[^a-z0-9])"
_BOUNDARY_AFTER = "([^a-z0-9]|$)"


def _escape(word: str) -> str:
    return "".join(char if char.isalnum() or char == " " else "\\" + char for char in word)


def words_pattern(words: Iterable[str]) -> str:
    alternatives = "|".join(_escape(word.strip().lower()) for word in words if word.strip())
    return f"{_BOUNDARY_BEFORE}({alternatives}){_BOUNDARY_AFTER}"


def words_match(text: str, words: Iterable[str]) -> bool:
    return re.search(words_pattern(words), text, flags=re.IGNORECASE) is not None
