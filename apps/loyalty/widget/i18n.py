"""
The widget's texts: one JSON catalog per language in `catalogs/` (en, fr, de, es; nothing to compile), sent with
the launcher's state so the script on the shop page holds no text of its own. The language is, in this order:
the snippet's `data-lang` (the shop chose), the customer's language (Customer.language), the shop page's
`<html lang>`, the browser's Accept-Language, else English. "fr-CA" and "fr_ca" mean French.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"
LANGUAGES = ("en", "fr", "de", "es")
DEFAULT_LANGUAGE = "en"
MAX_ACCEPT_LANGUAGE = 256  # bytes of the header read; the rest is ignored
_TAG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]{1,8})*$")


@functools.cache
def widget_catalog(language: str) -> dict[str, Any]:
    """The strings of a supported language (read once per process)."""
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    with (CATALOG_DIR / f"{language}.json").open(encoding="utf-8") as handle:
        catalog: dict[str, Any] = json.load(handle)
    return catalog


def supported(tag: str | None) -> str | None:
    """The catalog for a BCP 47 tag ("fr-CA" → "fr"), or None when we have none."""
    match = _TAG.match((tag or "").strip()[:35])
    if not match:
        return None
    primary = match.group(1).lower()
    return primary if primary in LANGUAGES else None


def accepted(header: str) -> list[str]:
    """The languages of an Accept-Language header, best first (q=0 dropped), bounded in size."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header[:MAX_ACCEPT_LANGUAGE].split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def widget_language(*, chosen: str = "", customer: str = "", page: str = "", accept_language: str = "") -> str:
    """The language the widget speaks (see the module's docstring for the order)."""
    for tag in (chosen, customer, page, *accepted(accept_language)):
        language = supported(tag)
        if language is not None:
            return language
    return DEFAULT_LANGUAGE
