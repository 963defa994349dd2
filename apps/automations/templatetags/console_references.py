"""`{% reference ref %}`: a stored reference (`bulk_run:12`, `api:token:5`, …) as a link or a readable name."""

from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser
from django.utils.html import format_html

from apps.automations.console.references import reference_describe

register = template.Library()


@register.simple_tag(takes_context=True)
def reference(context: dict[str, Any], ref: str) -> str:
    request = context.get("request")
    user = request.user if request is not None else AnonymousUser()
    described = reference_describe(ref, user)
    if described["url"]:
        return format_html('<a href="{}" data-ref="{}">{}</a>', described["url"], ref, described["label"])
    return format_html('<span data-ref="{}">{}</span>', ref, described["label"])
