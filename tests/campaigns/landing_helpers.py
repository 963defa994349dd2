"""Builders shared by the landing-page tests: blocks, published pages, console users and the editor's inputs."""

import re
from typing import Any

from django.contrib.auth.models import Group

from apps.campaigns.landing import services
from apps.campaigns.landing.blocks import template_blocks
from tests.factories import UserFactory


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


def staff_user(role: str) -> Any:
    """A console user (staff, not superuser) named `u-<role>` whose only rights are the `role` group's."""
    user = UserFactory(username=f"u-{role}", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    return user


def editor_inputs(html: str) -> dict[str, str]:
    """
    What a browser would post back from the landing editor's form: every input's name → value (hidden, text,
    number; not the CSRF token, nor file inputs, which a test posts itself), checked checkboxes as "on" or their
    value, textareas' text, selects' selected option.
    """
    found: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrfmiddlewaretoken" or 'type="file"' in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                found[name.group(1)] = value.group(1) if value else "on"
            continue
        found[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        found[name] = body
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        found[name] = chosen.group(1) if chosen else ""
    return found


__all__ = ["editor_inputs", "form_block", "published_page", "staff_user", "template_blocks"]
