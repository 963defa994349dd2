"""
Previews and test sends: a draft, a published version or unsaved texts, rendered for a chosen customer by
the same code as `render_for` (so the preview is the message as it is sent).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from .choices import TemplateChannel, VersionStatus
from .locales import locale_choose, locale_normalise
from .models import MessageTemplate, TemplateVariant, TemplateVersion
from .rendering import Rendered, variant_render
from .services import variant_errors

if TYPE_CHECKING:
    from ..models import Delivery

MAX_TEST_SUBJECT_PREFIX = "[Test] "


def _version(template: MessageTemplate, version: str) -> TemplateVersion:
    queryset = TemplateVersion.objects.filter(template=template).prefetch_related("variants")
    if version in ("", "draft"):
        found = queryset.filter(status=VersionStatus.DRAFT).first() or (
            queryset.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
        )
    elif version == "published":
        found = queryset.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
    elif version.isdigit() and len(version) < 10:
        found = queryset.filter(number=int(version)).first()
    else:
        raise ValidationError({"version": ['"draft", "published" or a version number']})
    if found is None:
        raise ValidationError({"version": [f"the template has no version {version!r}"]})
    return found


def preview_render(
    *,
    template: MessageTemplate,
    customer: Any,
    locale: str = "",
    subject: str | None = None,
    body: str | None = None,
    version: str = "draft",
    context: dict[str, Any] | None = None,
) -> Rendered:
    """
    `template` rendered for `customer`: the texts given (unsaved edits, validated as a save would) in `locale`,
    else that locale's variant of `version` ("draft": the draft, else the latest published; or a number),
    else the variant the customer's language picks.
    """
    chosen = _version(template, version)
    variants = {variant.locale: variant for variant in chosen.variants.all()}
    tag = locale_normalise(locale) or locale_choose(
        getattr(customer, "language", ""), variants, default=template.default_locale
    )
    if subject is not None or body is not None:
        errors = variant_errors(channel=template.channel, subject=subject or "", body=body or "")
        if errors:
            raise ValidationError(errors)
        variant = TemplateVariant(version=chosen, locale=tag, subject=subject or "", body=body or "")
    else:
        found = variants.get(tag) or variants.get(template.default_locale)
        if found is None:
            raise ValidationError({"locale": [f'no "{tag}" variant']})
        variant = found
    return variant_render(
        template=template,
        version_number=chosen.number or 0,
        variant=variant,
        customer=customer,
        context=context,
    )


def send_test(*, template: MessageTemplate, customer: Any, user: Any, locale: str = "") -> Delivery:
    """
    E-mail the draft (else the latest version) rendered for `customer` to the staff user's own address; an SMS
    or in-app template arrives as the text it would send. It goes through the messaging pipeline like any
    message: a transactional Delivery row (in the deliveries list, cause `template_test:<id>`, no customer —
    the staff user is the recipient, so the customer's page, consent and caps are not involved) holding the
    subject, text and HTML exactly as sent, from the brand's sender, retried on a transient provider error.
    Returns the delivery (sent, queued for a retry, or failed with the reason).
    """
    from ..choices import Channel, Purpose
    from ..services import Content, message_send

    address = (getattr(user, "email", "") or "").strip()
    if not address:
        raise ValidationError({"user": ["your account has no e-mail address"]})
    rendered = preview_render(template=template, customer=customer, locale=locale)
    label = {TemplateChannel.EMAIL: "", TemplateChannel.SMS: "SMS: ", TemplateChannel.IN_APP: "In-app: "}
    subject = f"{MAX_TEST_SUBJECT_PREFIX}{label[TemplateChannel(template.channel)]}{rendered.subject or template.name}"
    return message_send(
        # Every click is a new test message (never deduplicated against an earlier one).
        key=f"template_test:{template.pk}:{uuid.uuid4().hex}",
        channel=Channel.EMAIL,
        purpose=Purpose.TRANSACTIONAL,
        customer=None,
        to=address,
        content=Content(
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            template_key=template.key,
            template_version=rendered.version or None,
            locale=rendered.locale,
        ),
        cause=f"template_test:{template.pk}",
    )
