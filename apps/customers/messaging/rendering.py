"""
What a message says: inline subject/body (today's notify.* params) or a message template. The one place
messaging calls the templates package (apps/customers/messaging/templating) once it is on main.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.html import escape, format_html, linebreaks

from loyalty_site.lib.errors import DomainError

from .services import Content

if TYPE_CHECKING:
    from apps.customers.models import Customer


def inline_content(*, subject: str, body: str, unsubscribe_url: str = "") -> Content:
    """Inline text; the HTML part is the same text, escaped, in paragraphs; a marketing e-mail's footer link."""
    text, html = body, linebreaks(escape(body))
    if unsubscribe_url:
        text += f"\n\n--\nUnsubscribe: {unsubscribe_url}"
        html += format_html('<p class="footer"><a href="{}">Unsubscribe</a></p>', unsubscribe_url)
    return Content(subject=subject, text=text, html=html)


def template_content(template_key: str, customer: Customer | None, *, channel: str, context: dict[str, Any]) -> Content:
    """A template's latest published version rendered for `customer` (templates package, once landed)."""
    raise DomainError("Message templates are not available yet: use an inline subject and body.", path="template")
