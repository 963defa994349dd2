from rest_framework import serializers

from loyalty_site.lib.api.ranges import BoundedInputMixin

from ..models import Segment


class SegmentSerializer(BoundedInputMixin, serializers.ModelSerializer):
    condition = serializers.JSONField(required=False, allow_null=True)

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "condition", "is_active", "member_count", "refreshed_at", "created_at"]
        read_only_fields = ["member_count", "refreshed_at", "created_at"]
        # Name uniqueness (case-insensitive) is checked by the service, with its path.
        validators: list = []
