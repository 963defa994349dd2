"""The brand as the messages, landing pages and cockpit show it."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.urls import reverse

from .models import Brand


def brand_logo_url(brand: Brand) -> str:
    """
    Where the logo is, as an absolute address (e-mails are read elsewhere): the uploaded file, served by
    `brand-logo` under a name that changes with its content (cached for a year), else the configured address.
    """
    if brand.logo_data:
        digest = hashlib.sha256(bytes(brand.logo_data)).hexdigest()[:16]
        return f"{settings.SITE_URL.rstrip('/')}{reverse('brand-logo', kwargs={'digest': digest})}"
    return brand.logo_url
