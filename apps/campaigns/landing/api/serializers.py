from rest_framework import serializers

from loyalty_site.lib.api.ranges import BoundedInputMixin

from ..models import LandingPage, LandingPageVersion


class LandingPageVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = LandingPageVersion
        fields = ["number", "title", "blocks", "created_at"]
        read_only_fields = fields


class LandingPageSerializer(BoundedInputMixin, serializers.ModelSerializer):
    """A page's draft (blocks validated by the service, with paths such as `blocks[2].items[0].question`)."""

    blocks = serializers.JSONField(required=False)
    published_version = serializers.IntegerField(
        source="published_version.number", read_only=True, default=None, allow_null=True
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = LandingPage
        fields = ["id", "slug", "title", "template", "blocks", "status", "published_version", "url", "updated_at"]
        read_only_fields = ["status", "published_version", "url", "updated_at"]
        validators: list = []  # slug uniqueness is checked by the service, with its path
        extra_kwargs: dict[str, dict[str, list]] = {"slug": {"validators": []}}

    def get_url(self, page: LandingPage) -> str:
        return f"/p/{page.slug}/"
