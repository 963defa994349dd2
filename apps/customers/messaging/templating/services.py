"""
Writes of message templates and the brand. Every write validates here (console, API and commands share
it): unknown variables are refused at save with the field path, published versions are never edited.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.platform.audit import audit_diff, audit_record, audit_snapshot
from loyalty_site.lib.conditions import template_validate

from .choices import TemplateChannel, VersionStatus
from .locales import locale_normalise
from .models import LOCALE_PATTERN, Brand, MessageTemplate, TemplateVariant, TemplateVersion

# The objects a message may name: the customer (with loyalty and voucher fields) and the trigger's objects.
MESSAGE_SCOPES = ("customer", "order", "cart", "draft_order", "event", "product", "store")
MAX_SUBJECT = 255
MAX_BODY = {TemplateChannel.EMAIL: 20_000, TemplateChannel.IN_APP: 5_000, TemplateChannel.SMS: 1_600}
_LOCALE = re.compile(LOCALE_PATTERN)


def variant_errors(*, channel: str, subject: str, body: str, path: str = "") -> dict[str, list[str]]:
    """Every problem of one variant's texts, by field path (`subject`, `body`, or `variants.pt.body`)."""
    prefix = f"{path}." if path else ""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(prefix + field, []).append(message)

    # Sizes are checked before the texts are scanned for variables.
    body_limit = MAX_BODY[TemplateChannel(channel)]
    if len(subject) > MAX_SUBJECT:
        add("subject", f"at most {MAX_SUBJECT} characters")
    elif channel != TemplateChannel.SMS and not subject.strip():
        add("subject", "required" if channel == TemplateChannel.EMAIL else "required (the message's title)")
    else:
        for error in template_validate(subject, path="subject", scopes=MESSAGE_SCOPES):
            add("subject", error.message)
    if len(body) > body_limit:
        add("body", f"at most {body_limit} characters")
    elif not body.strip():
        add("body", "required")
    else:
        for error in template_validate(body, path="body", scopes=MESSAGE_SCOPES):
            add("body", error.message)
    return errors


def _locale_clean(locale: str, *, path: str = "locale") -> str:
    tag = locale_normalise(locale)
    if not _LOCALE.match(tag) or len(tag) > 16:
        raise ValidationError({path: [f'"{locale}" is not a language tag such as "en" or "pt-br"']})
    return tag


def _draft_for_edit(template: MessageTemplate, *, user: Any) -> TemplateVersion:
    """The template's draft, created from the latest published version's variants when there is none."""
    draft = TemplateVersion.objects.select_for_update().filter(template=template, status=VersionStatus.DRAFT).first()
    if draft is not None:
        return draft
    latest = (
        TemplateVersion.objects.filter(template=template, status=VersionStatus.PUBLISHED).order_by("-number").first()
    )
    draft = TemplateVersion.objects.create(template=template, created_by=user)
    if latest is not None:
        TemplateVariant.objects.bulk_create(
            TemplateVariant(version=draft, locale=variant.locale, subject=variant.subject, body=variant.body)
            for variant in latest.variants.all()
        )
    return draft


@transaction.atomic
def template_create(
    *,
    key: str,
    name: str,
    channel: str,
    purpose: str,
    subject: str,
    body: str,
    default_locale: str = "en",
    user: Any = None,
) -> MessageTemplate:
    """A new template with a draft version holding its default-locale variant (publish it to send it)."""
    locale = _locale_clean(default_locale, path="default_locale")
    template = MessageTemplate(
        key=key, name=name, channel=channel, purpose=purpose, default_locale=locale, created_by=user
    )
    errors: dict[str, list[str]] = {}
    try:
        template.full_clean()
    except ValidationError as error:
        errors.update(error.message_dict)
    if channel in TemplateChannel.values:
        for field, messages in variant_errors(channel=channel, subject=subject, body=body).items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    template.save()
    draft = TemplateVersion.objects.create(template=template, created_by=user)
    TemplateVariant.objects.create(version=draft, locale=locale, subject=subject, body=body)
    audit_record(action="created", obj=template, user=user)
    return template


@transaction.atomic
def template_update(
    *,
    template: MessageTemplate,
    name: str | None = None,
    purpose: str | None = None,
    default_locale: str | None = None,
    user: Any = None,
) -> MessageTemplate:
    """Rename, change the purpose or the default locale (the key and the channel are fixed once created)."""
    before = audit_snapshot(template, fields=("name", "purpose", "default_locale"))
    if name is not None:
        template.name = name
    if purpose is not None:
        template.purpose = purpose
    if default_locale is not None:
        template.default_locale = _locale_clean(default_locale, path="default_locale")
    template.full_clean(exclude=["key"])
    template.save()
    audit_record(action="updated", obj=template, before=before, user=user)
    return template


@transaction.atomic
def variant_save(
    *, template: MessageTemplate, locale: str, subject: str, body: str, user: Any = None
) -> TemplateVariant:
    """Set the text of one locale in the template's draft (created from the latest published version if needed)."""
    tag = _locale_clean(locale)
    errors = variant_errors(channel=template.channel, subject=subject, body=body)
    if errors:
        raise ValidationError(errors)
    template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    draft = _draft_for_edit(template, user=user)
    current = TemplateVariant.objects.filter(version=draft, locale=tag).first()
    before = {"subject": current.subject, "body": current.body} if current else {}
    variant, _created = TemplateVariant.objects.update_or_create(
        version=draft, locale=tag, defaults={"subject": subject, "body": body}
    )
    changes = {
        f"draft.{tag}.{key}": change for key, change in audit_diff(before, {"subject": subject, "body": body}).items()
    }
    if changes:
        audit_record(action="updated", obj=template, changes=changes, user=user)
    return variant


@transaction.atomic
def variant_delete(*, template: MessageTemplate, locale: str, user: Any = None) -> None:
    """Drop one locale from the draft (the default locale cannot be dropped)."""
    tag = _locale_clean(locale)
    if tag == template.default_locale:
        raise ValidationError({"locale": ["the default locale's variant cannot be removed"]})
    template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    draft = _draft_for_edit(template, user=user)
    deleted, _ = TemplateVariant.objects.filter(version=draft, locale=tag).delete()
    if not deleted:
        raise ValidationError({"locale": [f'the draft has no "{tag}" variant']})
    audit_record(action="updated", obj=template, changes={f"draft.{tag}": {"old": "variant", "new": None}}, user=user)


@transaction.atomic
def template_publish(*, template: MessageTemplate, user: Any = None) -> TemplateVersion:
    """
    Publish the draft as the next version number. Every variant is validated again (the catalog may have
    changed since it was saved); the default locale must have a variant. Published versions never change.
    """
    template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    draft = TemplateVersion.objects.filter(template=template, status=VersionStatus.DRAFT).first()
    if draft is None:
        raise ValidationError({"version": ["nothing to publish: the template has no draft"]})
    variants = list(draft.variants.all())
    errors: dict[str, list[str]] = {}
    if template.default_locale not in {variant.locale for variant in variants}:
        errors[f"variants.{template.default_locale}"] = ["the default locale needs a variant"]
    for variant in variants:
        errors.update(
            variant_errors(
                channel=template.channel, subject=variant.subject, body=variant.body, path=f"variants.{variant.locale}"
            )
        )
    if errors:
        raise ValidationError(errors)
    last = TemplateVersion.objects.filter(template=template).aggregate(last=Max("number"))["last"] or 0
    draft.number = last + 1
    draft.status = VersionStatus.PUBLISHED
    draft.published_at = timezone.now()
    draft.published_by = user if getattr(user, "is_authenticated", False) else None
    draft.save(update_fields=["number", "status", "published_at", "published_by"])
    audit_record(
        action="published", obj=template, changes={"version": {"old": last or None, "new": draft.number}}, user=user
    )
    return draft


# --- The brand ----------------------------------------------------------------------------------------------

BRAND_FIELDS = (
    "name",
    "logo_url",
    "primary_colour",
    "text_colour",
    "background_colour",
    "font_family",
    "footer_text",
    "sender_name",
    "sender_email",
)
LOGO_MAX_BYTES = 256 * 1024
# Raster formats every mail client shows (no SVG: scripts, and Gmail does not show it), by their magic bytes.
LOGO_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def logo_content_type(data: bytes) -> str | None:
    """The image type of an uploaded logo, by its first bytes (the file name and browser's claim are ignored)."""
    return next((kind for magic, kind in LOGO_SIGNATURES.items() if data.startswith(magic)), None)


@transaction.atomic
def brand_update(
    *, fields: dict[str, Any], logo: bytes | None = None, logo_remove: bool = False, user: Any = None
) -> Brand:
    """
    Change the brand (the one row, created on first save). `logo` is an uploaded PNG, JPEG or GIF of at most
    LOGO_MAX_BYTES; `logo_remove` drops the uploaded one. Audited (old → new values; the logo as its size).
    """
    unknown = sorted(set(fields) - set(BRAND_FIELDS))
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "Unknown brand field."))
    brand = Brand.objects.select_for_update().order_by("pk").first() or Brand()
    before = audit_snapshot(brand, fields=BRAND_FIELDS) if brand.pk else None
    logo_before = len(brand.logo_data or b"")
    for name, value in fields.items():
        setattr(brand, name, value)
    errors: dict[str, list[str]] = {}
    if brand.logo_url and not brand.logo_url.startswith("https://"):
        errors["logo_url"] = ["an https:// address (mail clients block others)"]
    if logo is not None:
        if len(logo) > LOGO_MAX_BYTES:
            errors["logo"] = [f"at most {LOGO_MAX_BYTES // 1024} KB"]
        elif (kind := logo_content_type(logo)) is None:
            errors["logo"] = ["a PNG, JPEG or GIF image"]
        else:
            brand.logo_data, brand.logo_content_type = logo, kind
    elif logo_remove:
        brand.logo_data, brand.logo_content_type = b"", ""
    try:
        brand.full_clean()
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    brand.updated_by = user if getattr(user, "is_authenticated", False) else None
    created = brand.pk is None
    brand.save()
    logo_after = len(brand.logo_data or b"")
    changes = audit_diff(before or {}, audit_snapshot(brand, fields=BRAND_FIELDS))
    if logo_after != logo_before or logo is not None:
        changes["logo"] = {"old": f"{logo_before} bytes", "new": f"{logo_after} bytes"}
    audit_record(action="created" if created else "updated", obj=brand, changes=changes, user=user)
    return brand
