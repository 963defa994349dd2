from rest_framework import serializers

from ..models import Delivery


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "channel",
            "purpose",
            "customer_id",
            "to",
            "template_key",
            "template_version",
            "locale",
            "subject",
            "text",
            "html",
            "status",
            "reason",
            "error",
            "provider_message_id",
            "attempts",
            "cause",
            "send_after",
            "created_at",
            "sent_at",
            "read_at",
        ]
        read_only_fields = fields
