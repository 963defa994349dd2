"""Builders shared by the landing-page tests."""

from typing import Any

from apps.campaigns.landing import services
from apps.campaigns.landing.blocks import template_blocks


def form_block(**fields: Any) -> dict[str, Any]:
    block = {
        "type": "form",
        "title": "Join",
        "fields": [
            {"name": "email", "label": "E-mail", "required": True},
            {"name": "first_name", "label": "First name", "required": False},
            {"name": "attribute:shoe_size", "label": "Shoe size", "required": False},
            {"name": "phone", "label": "Phone", "required": False},
        ],
        "consent_channels": ["email", "sms"],
        "consent_text": "Send me offers.",
        "join_program": True,
        "voucher_campaign": None,
        "submit_label": "Sign up",
        "success_text": "Check your inbox.",
    }
    block.update(fields)
    return block


def published_page(slug: str = "newsletter", *, blocks: list[dict[str, Any]] | None = None, user: Any = None):
    page = services.landing_page_save(
        slug=slug,
        title="Newsletter",
        template="signup",
        blocks=blocks
        if blocks is not None
        else [
            {"type": "hero", "title": "Get 5 % off", "text": "Sign up.", "button_label": "Go", "button_url": "#signup"},
            form_block(),
        ],
        user=user,
    )
    services.landing_page_publish(page=page, user=user)
    page.refresh_from_db()
    return page


__all__ = ["form_block", "published_page", "template_blocks"]
