"""
Message templates (per channel, with locale variants and immutable published versions) and the brand.

These models belong to the `customers` app (its migrations hold them), like the other sub-packages' models.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .choices import TemplateChannel, TemplatePurpose, VersionStatus

# A BCP 47 language tag as customers and templates store it: lower case, "-" separated ("en", "pt-br").
LOCALE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$"
locale_validator = RegexValidator(LOCALE_PATTERN, 'a language tag such as "en" or "pt-br"')
HEX_COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "a colour such as #1a73e8")


class MessageTemplate(models.Model):
    """A message a workflow or a campaign sends, found by its `key`; its content lives in its versions."""

    key = models.SlugField(max_length=64, unique=True, help_text="How workflows name it (notify.* `template`)")
    name = models.CharField(max_length=120)
    channel = models.CharField(max_length=8, choices=TemplateChannel.choices)
    purpose = models.CharField(max_length=16, choices=TemplatePurpose.choices, default=TemplatePurpose.MARKETING)
    default_locale = models.CharField(
        max_length=16,
        default="en",
        validators=[locale_validator],
        help_text="The variant sent when none matches the customer's language",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "pk"]
        permissions = [("publish_messagetemplate", "Can publish message templates")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class TemplateVersion(models.Model):
    """
    One version of a template: the draft being edited (number unset; at most one per template) or a
    published version (numbered 1, 2, …), which is never edited again. Deliveries record the number.
    """

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_number_uniq"),
            models.UniqueConstraint(
                fields=["template"], condition=Q(status="draft"), name="template_version_one_draft"
            ),
            models.CheckConstraint(
                condition=(Q(status="draft") & Q(number__isnull=True))
                | (Q(status="published") & Q(number__isnull=False) & Q(published_at__isnull=False)),
                name="template_version_numbered_when_published",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.key} v{self.number}" if self.number else f"{self.template.key} draft"


class TemplateVariant(models.Model):
    """The content of one version in one locale: subject (e-mail subject, in-app title) and body."""

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="variants")
    locale = models.CharField(max_length=16, validators=[locale_validator])
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True, help_text="Markdown for e-mail and in-app messages, plain text for SMS")

    class Meta:
        ordering = ["version", "locale"]
        constraints = [models.UniqueConstraint(fields=["version", "locale"], name="template_variant_locale_uniq")]

    def __str__(self) -> str:
        return f"{self.version} [{self.locale}]"


class Brand(models.Model):
    """
    The one brand row (read it with `get_brand()`): what e-mails, landing pages and the customer cockpit
    show as the sender's identity.
    """

    name = models.CharField(max_length=120, default="Loyalty Site")
    logo_url = models.URLField(blank=True, help_text="An https address of the logo (used when no file is uploaded)")
    # An uploaded logo is kept in the database (served by `brand-logo`), so no media storage is needed.
    logo_data = models.BinaryField(blank=True, default=b"", editable=False)
    logo_content_type = models.CharField(max_length=32, blank=True, editable=False)
    primary_colour = models.CharField(max_length=7, default="#1a73e8", validators=[HEX_COLOUR])
    text_colour = models.CharField(max_length=7, default="#202124", validators=[HEX_COLOUR])
    background_colour = models.CharField(max_length=7, default="#f5f6f8", validators=[HEX_COLOUR])
    font_family = models.CharField(
        max_length=120,
        default="Helvetica, Arial, sans-serif",
        validators=[RegexValidator(r"^[A-Za-z0-9 ,'\"-]+$", "font names separated by commas")],
    )
    footer_text = models.TextField(blank=True, max_length=2000)
    sender_name = models.CharField(max_length=120, blank=True)
    sender_email = models.EmailField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "brand"
        verbose_name_plural = "brand"

    def __str__(self) -> str:
        return self.name
