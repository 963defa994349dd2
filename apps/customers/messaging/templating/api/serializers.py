from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from loyalty_site.lib.api.ranges import BoundedInputMixin

from ..choices import TemplateChannel, TemplatePurpose
from ..models import MessageTemplate

MAX_SUBJECT = 255
MAX_BODY = 20_000


class VariantSerializer(BoundedInputMixin, serializers.Serializer):
    locale = serializers.CharField(max_length=16, help_text='A language tag: "en", "pt-br"')
    subject = serializers.CharField(max_length=MAX_SUBJECT, allow_blank=True, required=False, default="")
    body = serializers.CharField(max_length=MAX_BODY, allow_blank=True, trim_whitespace=False)


class VersionSerializer(serializers.Serializer):
    number = serializers.IntegerField(allow_null=True, help_text="null: the draft")
    status = serializers.CharField()
    published_at = serializers.DateTimeField(allow_null=True)
    variants = VariantSerializer(many=True)


class MessageTemplateSerializer(BoundedInputMixin, serializers.ModelSerializer):
    """A template with its draft (if any) and its latest published version."""

    draft = serializers.SerializerMethodField()
    published = serializers.SerializerMethodField()
    # Create only: the default locale's first variant.
    subject = serializers.CharField(max_length=MAX_SUBJECT, allow_blank=True, required=False, write_only=True)
    body = serializers.CharField(max_length=MAX_BODY, required=False, write_only=True, trim_whitespace=False)

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "key",
            "name",
            "channel",
            "purpose",
            "default_locale",
            "subject",
            "body",
            "draft",
            "published",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # Key uniqueness and the variables are checked by the service, with their paths.
        validators: list = []
        extra_kwargs: dict[str, dict[str, Any]] = {"key": {"validators": []}}

    def _versions(self, template: MessageTemplate) -> list[Any]:
        return list(getattr(template, "versions_ordered", None) or template.versions.all())

    def _version_data(self, version: Any) -> dict[str, Any] | None:
        if version is None:
            return None
        return {
            "number": version.number,
            "status": version.status,
            "published_at": version.published_at,
            "variants": [
                {"locale": variant.locale, "subject": variant.subject, "body": variant.body}
                for variant in sorted(version.variants.all(), key=lambda variant: variant.locale)
            ],
        }

    @staticmethod
    def _as_version(data: dict[str, Any] | None) -> dict[str, Any] | None:
        return dict(VersionSerializer(data).data) if data else None

    @extend_schema_field(VersionSerializer(allow_null=True))
    def get_draft(self, template: MessageTemplate) -> dict[str, Any] | None:
        draft = next((version for version in self._versions(template) if version.number is None), None)
        return self._as_version(self._version_data(draft))

    @extend_schema_field(VersionSerializer(allow_null=True))
    def get_published(self, template: MessageTemplate) -> dict[str, Any] | None:
        published = [version for version in self._versions(template) if version.number is not None]
        latest = max(published, key=lambda version: version.number, default=None)
        return self._as_version(self._version_data(latest))


class TemplateCreateSerializer(BoundedInputMixin, serializers.Serializer):
    key = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=120)
    channel = serializers.ChoiceField(choices=TemplateChannel.choices)
    purpose = serializers.ChoiceField(choices=TemplatePurpose.choices, default=TemplatePurpose.MARKETING)
    default_locale = serializers.CharField(max_length=16, default="en")
    subject = serializers.CharField(max_length=MAX_SUBJECT, allow_blank=True, required=False, default="")
    body = serializers.CharField(max_length=MAX_BODY, trim_whitespace=False)


class TemplateUpdateSerializer(BoundedInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    purpose = serializers.ChoiceField(choices=TemplatePurpose.choices, required=False)
    default_locale = serializers.CharField(max_length=16, required=False)


class PreviewInputSerializer(BoundedInputMixin, serializers.Serializer):
    customer_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    locale = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
    version = serializers.RegexField(
        r"^(draft|published|[0-9]{1,9})$", required=False, default="draft", help_text='"draft", "published" or a number'
    )
    subject = serializers.CharField(
        max_length=MAX_SUBJECT, required=False, allow_blank=True, allow_null=True, default=None
    )
    body = serializers.CharField(
        max_length=MAX_BODY, required=False, allow_blank=True, allow_null=True, default=None, trim_whitespace=False
    )


class RenderedSerializer(serializers.Serializer):
    subject = serializers.CharField()
    text = serializers.CharField()
    html = serializers.CharField()
    template_id = serializers.IntegerField()
    version = serializers.IntegerField(help_text="0: the draft")
    locale = serializers.CharField()
