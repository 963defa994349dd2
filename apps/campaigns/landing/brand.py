"""
The brand a landing page is drawn with (name, logo, colours, font): the Brand shared with e-mail templates and the
cockpit (`apps.customers.messaging.templating`), read once per page by `page_brand`.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.customers.messaging.templating.brand import brand_logo_url
from apps.customers.messaging.templating.selectors import get_brand


@dataclass(frozen=True)
class PageBrand:
    name: str
    logo_url: str
    primary: str  # hex colour of buttons and accents
    background: str
    text: str
    font: str

    @property
    def on_primary(self) -> str:
        """Black or white, whichever reads better on the primary colour (WCAG contrast)."""
        return "#000000" if contrast(self.primary, "#000000") >= contrast(self.primary, "#ffffff") else "#ffffff"


def _luminance(colour: str) -> float:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """The WCAG 2 contrast ratio of two hex colours (1 … 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


DEFAULT_BRAND = PageBrand(
    name="Loyalty Site",
    logo_url="",
    primary="#1f5fbf",
    background="#ffffff",
    text="#1b1b1b",
    font='system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
)


def page_brand() -> PageBrand:
    """The shared Brand (one query; its defaults until someone saves it), as public pages draw it."""
    brand = get_brand()
    return PageBrand(
        name=brand.name or DEFAULT_BRAND.name,
        logo_url=brand_logo_url(brand),
        primary=brand.primary_colour or DEFAULT_BRAND.primary,
        background=brand.background_colour or DEFAULT_BRAND.background,
        text=brand.text_colour or DEFAULT_BRAND.text,
        font=brand.font_family or DEFAULT_BRAND.font,
    )
