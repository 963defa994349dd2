from rest_framework import serializers

from apps.customers.api.serializers import ProductInputSerializer

from ..models import Tag
from ..services import MAX_TAG_LENGTH


class TagSerializer(serializers.ModelSerializer):
    customer_count = serializers.IntegerField(read_only=True)
    product_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "name", "description", "customer_count", "product_count", "created_at"]
        read_only_fields = ["id", "customer_count", "product_count", "created_at"]
        # Uniqueness (case-insensitive) is the service's business: an existing name returns that tag.
        validators: list = []


class TagNamesSerializer(serializers.Serializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), allow_empty=False, max_length=100
    )


class ProductWithTagsInputSerializer(ProductInputSerializer):
    tags = serializers.ListField(child=serializers.CharField(max_length=MAX_TAG_LENGTH), required=False, max_length=100)
