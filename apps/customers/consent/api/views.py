"""The suppression list as an API resource: `/api/v1/suppressions/` (list, create, retrieve, delete)."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS

from .. import selectors, services
from ..filters import SuppressionFilter
from .serializers import SuppressionSerializer


@extend_schema_view(
    create=extend_schema(
        request=SuppressionSerializer,
        responses={201: SuppressionSerializer, 200: SuppressionSerializer},
        description="Suppress an address on a channel. An address already listed is answered with its row (200).",
    )
)
class SuppressionViewSet(
    IdempotentMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """
    Addresses that receive nothing on their channel (hard bounces, complaints, manual). Filter with
    `?address=`, `?channel=`, `?reason=`, `?search=`. Creating an address already listed returns it (200).
    Model permissions on suppressions (view / add / delete) and the `ingest` scope.
    """

    permission_classes = API_PERMISSIONS
    scope_family = "ingest"
    serializer_class = SuppressionSerializer
    filterset_class = SuppressionFilter

    def get_queryset(self):
        return selectors.suppression_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SuppressionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        existed = selectors.suppression_exists(address=data["address"], channel=data["channel"])
        row = services.suppression_add(
            address=data["address"], channel=data["channel"], reason=data["reason"], source="api"
        )
        return Response(
            SuppressionSerializer(row).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.suppression_remove(suppression=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
