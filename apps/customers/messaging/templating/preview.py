"""
Previews and test sends: a draft, a published version or unsaved texts, rendered for a chosen customer by
the same code as `render_for` (so the preview is the message as it is sent).
"""

from __future__ import annotations

from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives

from .choices import TemplateChannel, VersionStatus
from .locales import locale_choose, locale_normalise
from .models import MessageTemplate, TemplateVariant, TemplateVersion
from .rendering import Rendered, variant_render
from .selectors import get_brand
from .services import variant_errors

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


def send_test(*, template: MessageTemplate, customer: Any, user: Any, locale: str = "") -> str:
    """
    E-mail the draft (else the latest version) rendered for `customer` to the staff user's own address; an SMS
    or in-app template arrives as the text it would send. Returns the address.
    """
    address = (getattr(user, "email", "") or "").strip()
    if not address:
        raise ValidationError({"user": ["your account has no e-mail address"]})
    rendered = preview_render(template=template, customer=customer, locale=locale)
    brand = get_brand()
    sender = (
        formataddr((brand.sender_name or brand.name, brand.sender_email))
        if brand.sender_email
        else settings.DEFAULT_FROM_EMAIL
    )
    label = {TemplateChannel.EMAIL: "", TemplateChannel.SMS: "SMS: ", TemplateChannel.IN_APP: "In-app: "}
    subject = f"{MAX_TEST_SUBJECT_PREFIX}{label[TemplateChannel(template.channel)]}{rendered.subject or template.name}"
    message = EmailMultiAlternatives(subject=subject, body=rendered.text, from_email=sender, to=[address])
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    message.send()
    return address
