"""
`GET /api/v1/`: the API's index, listing the resources the caller may reach (its permissions, and its
token's scopes for a token), with links to the schema and the interactive docs. Any authenticated caller
may read it: it says only what that caller can do.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.automations.api import gallery_urls as workflow_templates_urls
from apps.automations.api import urls as automations_urls
from apps.campaigns.api import urls as campaigns_urls
from apps.campaigns.promotions.api import urls as promotions_urls
from apps.customers.api import urls as customers_urls
from apps.loyalty.api import urls as loyalty_urls
from apps.platform.models import ApiToken
from apps.platform.permissions import required_permissions, required_scopes
from apps.tagging.api import urls as tagging_urls

ROUTERS = [
    customers_urls.router,
    tagging_urls.router,
    loyalty_urls.router,
    campaigns_urls.router,
    promotions_urls.router,
    automations_urls.router,
    workflow_templates_urls.router,
]


class _AsMethod:
    """The caller's request seen as another method (what may it do with POST here?)."""

    def __init__(self, request: Request, method: str) -> None:
        self._request = request
        self.method = method

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def _allowed(request: Request, viewset: Any, action: str, method: str) -> bool:
    view = viewset()
    view.action, view.request, view.args, view.kwargs, view.format_kwarg = action, request, (), {}, None
    if not hasattr(view, action):
        return False  # the resource has no list (or no create)
    as_method: Any = _AsMethod(request, method)
    permissions = required_permissions(as_method, view)
    if permissions is None or not request.user.has_perms(permissions):
        return False
    token = request.auth
    if isinstance(token, ApiToken):
        granted = set(token.scopes or ())
        if "admin" not in granted:
            needed = required_scopes(as_method, view)
            return needed is not None and not granted.isdisjoint(needed)
    return True


class ApiIndexView(APIView):
    """What this caller may reach under /api/v1/ (read: list/retrieve; write: create)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="api_index",
        responses=inline_serializer(
            "ApiIndex",
            {
                "resources": inline_serializer(
                    "ApiIndexResource",
                    {
                        "name": serializers.CharField(),
                        "url": serializers.CharField(),
                        "read": serializers.BooleanField(),
                        "write": serializers.BooleanField(),
                    },
                    many=True,
                ),
                "schema": serializers.CharField(),
                "docs": serializers.CharField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        resources = []
        seen = set()
        for router in ROUTERS:
            for prefix, viewset, _basename in router.registry:
                if prefix in seen:
                    continue
                read = _allowed(request, viewset, "list", "GET")
                write = _allowed(request, viewset, "create", "POST")
                if read or write:
                    seen.add(prefix)
                    url = request.build_absolute_uri(f"/api/v1/{prefix}/")
                    resources.append({"name": prefix, "url": url, "read": read, "write": write})
        return Response(
            {
                "resources": sorted(resources, key=lambda item: item["name"]),
                "schema": request.build_absolute_uri("/api/schema/"),
                "docs": request.build_absolute_uri("/api/docs/"),
            }
        )
