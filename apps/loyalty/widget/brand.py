"""The widget's look: the shared Brand (`apps.customers.messaging.templating`) — name, logo, colours, font."""

from __future__ import annotations

from apps.customers.messaging.templating.brand import brand_logo_url
from apps.customers.messaging.templating.selectors import get_brand
from loyalty_site.lib.colour import readable_on


def widget_brand() -> dict[str, str]:
    """What the script paints the launcher and panel with (one query); the button text colour by WCAG contrast."""
    brand = get_brand()
    return {
        "name": brand.name,
        "logo_url": brand_logo_url(brand),
        "primary": brand.primary_colour,
        "on_primary": readable_on(brand.primary_colour),
        "background": brand.background_colour,
        "text": brand.text_colour,
        "font": brand.font_family,
    }
