"""
What a message says: inline subject/body (today's notify.* params) or a message template. The one place
messaging calls the templates package (apps/customers/messaging/templating).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.html import escape, format_html, linebreaks

from .services import Content
from .templating import render_for
from .templating.selectors import template_get

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
    """
    A template's latest published version in the customer's language, rendered for `customer` (templating
    package); DomainError (path "template") for an unknown, unpublished or other-channel template.
    """
    rendered = render_for(template_key, customer, channel=channel, context=context)
    return Content(
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        template_key=template_key,
        template_version=rendered.version,
        locale=rendered.locale,
    )


def template_problem(template_key: str, *, channel: str) -> str | None:
    """Save-time: why `template_key` cannot be used on `channel` (None: it can)."""
    template = template_get(key=template_key)
    if template is None:
        return f'No message template "{template_key}".'
    if template.channel != channel:
        return f'Template "{template_key}" is for {template.channel}, not {channel}.'
    return None
