"""Tagging API: tags (with customer counts), products with their tags, tag actions on customers."""

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.customers import selectors as customer_selectors
from apps.customers import services as customer_services
from apps.customers.api.serializers import CustomerSerializer, ProductSerializer
from apps.customers.api.views import api_cause
from apps.customers.filters import ProductFilterSet
from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS

from .. import selectors, services
from ..choices import TagSource
from ..filters import TagFilterSet
from .serializers import ProductWithTagsInputSerializer, TagNamesSerializer, TagSerializer


@extend_schema_view(
    create=extend_schema(
        responses={201: TagSerializer, 200: TagSerializer},
        description="Create a tag; an existing name (case-insensitive) returns that tag (200).",
    )
)
class TagViewSet(IdempotentMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Tags with the number of customers and products carrying each."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"

    serializer_class = TagSerializer
    filterset_class = TagFilterSet

    def get_queryset(self):
        return selectors.tag_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = TagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag, created = services.tag_create(**serializer.validated_data)
        return Response(
            TagSerializer(self.get_queryset().get(pk=tag.pk)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(
    create=extend_schema(
        request=ProductWithTagsInputSerializer,
        responses={201: ProductSerializer, 200: ProductSerializer},
        description="Create a product, or update the one with this `external_id` (200). `tags` replaces its tags.",
        examples=[
            OpenApiExample(
                "Product",
                value={"external_id": "sku-teddy", "title": "Teddy bear", "price": "19.90", "tags": ["Kids & Baby"]},
                request_only=True,
            )
        ],
    )
)
class ProductViewSet(IdempotentMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Products and their tags (filter with `?tag=`, `?external_id=`, `?title=`). POST upserts by
    `external_id`; PUT/PATCH change a product by id (`tags`, when given, replaces its tags)."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"

    serializer_class = ProductSerializer
    filterset_class = ProductFilterSet

    def get_queryset(self):
        return customer_selectors.product_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ProductWithTagsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tags = data.pop("tags", None)
        external_id = data.pop("external_id", None)
        existed = bool(external_id) and self.get_queryset().filter(external_id=external_id).exists()
        with transaction.atomic():
            product = customer_services.product_upsert(external_id=external_id, **data)
            if tags is not None:
                services.product_tags_set(product=product, names=tags)
        return Response(
            ProductSerializer(self.get_queryset().get(pk=product.pk)).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(request=ProductWithTagsInputSerializer, responses=ProductSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        product = self.get_object()
        partial = kwargs.get("partial", False)
        serializer = ProductWithTagsInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        # A partial update only touches what was sent (serializer defaults do not apply).
        data = {key: value for key, value in serializer.validated_data.items() if not partial or key in request.data}
        tags = data.pop("tags", None)
        with transaction.atomic():
            customer_services.product_update(product=product, **data)
            if tags is not None:
                services.product_tags_set(product=product, names=tags)
        return Response(ProductSerializer(self.get_queryset().get(pk=product.pk)).data)


class CustomerTagActionsViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """`/customers/{id}/add_tags/` and `/remove_tags/` (tagging depends on customers, so they live here)."""

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    action_permissions = {"add_tags": ["tagging.add_customertag"], "remove_tags": ["tagging.delete_customertag"]}

    serializer_class = TagNamesSerializer
    filter_backends: list = []

    def get_queryset(self):
        return customer_selectors.customer_list()

    def _read(self, pk: int) -> Response:
        return Response(CustomerSerializer(self.get_queryset().get(pk=pk)).data)

    @extend_schema(
        request=TagNamesSerializer,
        responses=CustomerSerializer,
        examples=[OpenApiExample("Tags", value={"tags": ["VIP", "newsletter"]}, request_only=True)],
    )
    @action(detail=True, methods=["post"])
    def add_tags(self, request: Request, pk: str | None = None) -> Response:
        """Add tags (created if new); each new tag sends `customer.tag_added`."""
        customer = self.get_object()
        serializer = TagNamesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.tags_add(
            customer=customer,
            names=serializer.validated_data["tags"],
            source=TagSource.API,
            source_ref=api_cause(request),
            actor=request.user,
        )
        return self._read(customer.pk)

    @extend_schema(request=TagNamesSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def remove_tags(self, request: Request, pk: str | None = None) -> Response:
        """Remove tags from the customer (unknown names are ignored)."""
        customer = self.get_object()
        serializer = TagNamesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.tags_remove(
            customer=customer,
            names=serializer.validated_data["tags"],
            source=TagSource.API,
            source_ref=api_cause(request),
            actor=request.user,
        )
        return self._read(customer.pk)
