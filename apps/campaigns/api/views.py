from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS

from .. import services
from ..models import Segment
from .serializers import SegmentSerializer


class SegmentViewSet(IdempotentMixin, viewsets.ModelViewSet):
    """Dynamic segments: a condition over customer fields; members are refreshed set-based."""

    permission_classes = API_PERMISSIONS
    scope_family = "campaigns"
    action_permissions = {"refresh": ["campaigns.change_segment"]}

    serializer_class = SegmentSerializer
    queryset = Segment.objects.all()
    filterset_fields = ["is_active"]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = services.segment_create(**serializer.validated_data)
        return Response(self.get_serializer(segment).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        segment = self.get_object()
        serializer = self.get_serializer(segment, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        segment = services.segment_update(segment=segment, **serializer.validated_data)
        return Response(self.get_serializer(segment).data)

    @extend_schema(request=None, responses=SegmentSerializer)
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        """Recompute the members now (one DELETE and one INSERT … SELECT)."""
        segment = services.segment_refresh(segment=self.get_object())
        return Response(self.get_serializer(segment).data)
