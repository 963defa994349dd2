"""
Message templates and the brand (issue 14, "Templates").

    from apps.customers.messaging.templating import render_for
    render_for(template_key, customer, *, channel, context) -> Rendered

Templates per channel (e-mail, SMS, in-app) with locale variants chosen by the customer's language and
immutable published versions; the brand (`get_brand()`) is shared with landing pages and the cockpit.
"""

from .rendering import UNSUBSCRIBE_URL_PLACEHOLDER, PreparedTemplate, Rendered, render_for, template_prepare
from .selectors import get_brand

__all__ = [
    "UNSUBSCRIBE_URL_PLACEHOLDER",
    "PreparedTemplate",
    "Rendered",
    "get_brand",
    "render_for",
    "template_prepare",
]
