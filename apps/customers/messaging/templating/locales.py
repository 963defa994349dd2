"""Which locale variant a customer gets: exact tag, then the language alone, then the template's default."""

from __future__ import annotations

from collections.abc import Iterable


def locale_normalise(tag: str | None) -> str:
    """ "pt_BR" / "PT-br " -> "pt-br" (the form customers and variants store)."""
    return (tag or "").strip().replace("_", "-").lower()


def locale_choose(wanted: str | None, available: Iterable[str], *, default: str) -> str:
    """
    The variant for a customer whose language is `wanted`: the same tag ("pt-br"), else the bare language
    ("pt"), else another variant of that language ("pt-pt" for "pt"), else `default`.
    """
    choices = sorted(set(available))
    tag = locale_normalise(wanted)
    if not tag:
        return default
    if tag in choices:
        return tag
    language = tag.split("-", 1)[0]
    if language in choices:
        return language
    same_language = [choice for choice in choices if choice.split("-", 1)[0] == language]
    return same_language[0] if same_language else default
