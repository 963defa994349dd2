"""`/api/v1/message-templates/`: CRUD, a locale variant of the draft, publish, and a preview for a customer."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.customers.models import Customer
from apps.platform.audit import audit_record, audit_snapshot
from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS
from loyalty_site.lib.errors import DomainError

from .. import services
from ..models import MessageTemplate, TemplateVariant, TemplateVersion
from ..preview import preview_render
from . import serializers as s


class MessageTemplateViewSet(IdempotentMixin, viewsets.ModelViewSet):
    """Message templates per channel with locale variants and immutable published versions."""

    permission_classes = API_PERMISSIONS
    # Marketing content: the `campaigns` token scope (reads also `reports`).
    scope_family = "campaigns"
    read_actions = ("preview",)
    action_permissions = {
        "variants": ["customers.change_messagetemplate"],
        "publish": ["customers.publish_messagetemplate"],
        # A preview shows a customer's data.
        "preview": ["customers.view_messagetemplate", "customers.view_customer"],
    }
    serializer_class = s.MessageTemplateSerializer
    filterset_fields = ["channel", "purpose", "key"]

    def get_queryset(self) -> QuerySet[MessageTemplate]:
        return MessageTemplate.objects.order_by("name", "pk").prefetch_related(
            Prefetch(
                "versions",
                queryset=TemplateVersion.objects.prefetch_related(
                    Prefetch("variants", queryset=TemplateVariant.objects.order_by("locale"))
                ),
                to_attr="versions_ordered",
            )
        )

    def _fresh(self, template: MessageTemplate) -> MessageTemplate:
        return self.get_queryset().get(pk=template.pk)

    @extend_schema(request=s.TemplateCreateSerializer, responses={201: s.MessageTemplateSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.TemplateCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_create(**data.validated_data, user=request.user)
        return Response(self.get_serializer(self._fresh(template)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TemplateUpdateSerializer, responses=s.MessageTemplateSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        template = self.get_object()
        data = s.TemplateUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        services.template_update(template=template, **data.validated_data, user=request.user)
        return Response(self.get_serializer(self._fresh(template)).data)

    @extend_schema(request=s.TemplateUpdateSerializer, responses=s.MessageTemplateSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    def perform_destroy(self, instance: MessageTemplate) -> None:
        audit_record(action="deleted", obj=instance, before=audit_snapshot(instance), user=self.request.user)
        instance.delete()

    @extend_schema(request=s.VariantSerializer, responses=s.MessageTemplateSerializer)
    @action(detail=True, methods=["post"])
    def variants(self, request: Request, pk: str | None = None) -> Response:
        """Set one locale's subject and body in the draft (created from the latest version when needed)."""
        template = self.get_object()
        data = s.VariantSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.variant_save(template=template, **data.validated_data, user=request.user)
        return Response(self.get_serializer(self._fresh(template)).data)

    @extend_schema(request=None, responses=s.MessageTemplateSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Publish the draft as the next version (every variant validated again)."""
        template = self.get_object()
        services.template_publish(template=template, user=request.user)
        return Response(self.get_serializer(self._fresh(template)).data)

    @extend_schema(request=s.PreviewInputSerializer, responses=s.RenderedSerializer)
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """The message for one customer exactly as sent: the draft, a version, or the texts given."""
        template = self.get_object()
        data = s.PreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        customer = Customer.objects.filter(pk=values["customer_id"]).first()
        if customer is None:
            raise DomainError("no such customer", path="customer_id", code="not_found")
        rendered = preview_render(
            template=template,
            customer=customer,
            locale=values["locale"],
            subject=values["subject"],
            body=values["body"],
            version=values["version"],
        )
        return Response(s.RenderedSerializer(asdict(rendered)).data)
