from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS

from .. import services
from ..blocks import template_blocks
from ..models import LandingPage
from .serializers import LandingPageSerializer, LandingPageVersionSerializer

PUBLISH = "campaigns.publish_landingpage"


class LandingPageViewSet(IdempotentMixin, viewsets.ModelViewSet):
    """Landing pages (draft blocks); `publish` freezes the draft as a version served at /p/<slug>/."""

    permission_classes = API_PERMISSIONS
    scope_family = "campaigns"
    action_permissions = {"publish": [PUBLISH], "unpublish": [PUBLISH]}
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    serializer_class = LandingPageSerializer
    queryset = LandingPage.objects.select_related("published_version").order_by("slug")
    filterset_fields = ["status", "template"]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        template = data.get("template", "signup")
        page = services.landing_page_save(
            slug=data["slug"],
            title=data["title"],
            template=template,
            blocks=data["blocks"] if "blocks" in data else template_blocks(template),
            user=request.user,
        )
        return Response(self.get_serializer(page).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.get_object()
        serializer = self.get_serializer(page, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        page = services.landing_page_save(
            page=page,
            slug=data.get("slug", page.slug),
            title=data.get("title", page.title),
            template=data.get("template", page.template),
            blocks=data.get("blocks", page.blocks),
            user=request.user,
        )
        return Response(self.get_serializer(page).data)

    @extend_schema(request=None, responses={201: LandingPageVersionSerializer})
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Freeze the draft as the next version (re-validated) and serve it at /p/<slug>/."""
        version = services.landing_page_publish(page=self.get_object(), user=request.user)
        return Response(LandingPageVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=LandingPageSerializer)
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, pk: str | None = None) -> Response:
        """Take the page offline (its versions are kept)."""
        page = services.landing_page_unpublish(page=self.get_object(), user=request.user)
        return Response(self.get_serializer(page).data)
