"""
The brand a landing page is drawn with (name, logo, colours, font): the Brand shared with e-mail templates and the
cockpit (`apps.customers.messaging.templating`), read once per page by `page_brand`.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.customers.messaging.templating.brand import brand_logo_url
from apps.customers.messaging.templating.selectors import get_brand
from loyalty_site.lib.colour import readable_on


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
        return readable_on(self.primary)


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
