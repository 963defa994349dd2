"""The brand as the messages, landing pages and cockpit show it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from loyalty_site.lib.colour import readable_on

from .models import Brand
from .selectors import get_brand


def brand_logo_url(brand: Brand) -> str:
    """
    Where the logo is, as an absolute address (e-mails are read elsewhere): the uploaded file, served by
    `brand-logo` under a name that changes with its content (cached for a year), else the configured address.
    """
    if brand.logo_data:
        digest = hashlib.sha256(bytes(brand.logo_data)).hexdigest()[:16]
        return f"{settings.SITE_URL.rstrip('/')}{reverse('brand-logo', kwargs={'digest': digest})}"
    return brand.logo_url


@dataclass(frozen=True)
class BrandLook:
    """What public pages (landing pages, the customer cockpit) are drawn with: name, logo, colours, font."""

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


DEFAULT_LOOK = BrandLook(
    name="Loyalty Site",
    logo_url="",
    primary="#1f5fbf",
    background="#ffffff",
    text="#1b1b1b",
    font='system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
)


def brand_look() -> BrandLook:
    """The shared Brand (one query; its defaults until someone saves it), as public pages draw it."""
    brand = get_brand()
    return BrandLook(
        name=brand.name or DEFAULT_LOOK.name,
        logo_url=brand_logo_url(brand),
        primary=brand.primary_colour or DEFAULT_LOOK.primary,
        background=brand.background_colour or DEFAULT_LOOK.background,
        text=brand.text_colour or DEFAULT_LOOK.text,
        font=brand.font_family or DEFAULT_LOOK.font,
    )
