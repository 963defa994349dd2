"""The brand as the messages, landing pages and cockpit show it."""

from __future__ import annotations

from .models import Brand


def brand_logo_url(brand: Brand) -> str:
    """Where the logo is: the uploaded file (served by the site) wins over the configured address."""
    return brand.logo_url
