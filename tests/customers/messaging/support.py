"""Helpers of the messaging tests (no tests here)."""

from typing import Any

from apps.customers.messaging.templating import services as templates
from apps.customers.messaging.templating.models import MessageTemplate


def template_published(
    key: str, *, subject: str, body: str, channel: str = "email", purpose: str = "marketing", **fields: Any
) -> MessageTemplate:
    """A template (named after its key unless `name` says otherwise) created and published as version 1."""
    template = templates.template_create(
        key=key, name=fields.pop("name", key), channel=channel, purpose=purpose, subject=subject, body=body, **fields
    )
    templates.template_publish(template=template)
    return template
