"""Workflows (CRUD, activate, pause, test, validate, versions), runs (filtered, with steps; replay) and the
field catalog for builders and integrators."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.platform import capabilities as cap
from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS

from .. import selectors, services
from ..definitions import definition_validate
from ..filters import WorkflowFilterSet, WorkflowRunFilterSet
from ..models import Workflow
from .serializers import (
    TestInputSerializer,
    ValidateInputSerializer,
    WorkflowInputSerializer,
    WorkflowRunSerializer,
    WorkflowSerializer,
    WorkflowVersionSerializer,
)


def _input(request: Request, *, partial: bool = False) -> dict[str, Any]:
    serializer = WorkflowInputSerializer(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class WorkflowViewSet(IdempotentMixin, viewsets.ModelViewSet):
    permission_classes = API_PERMISSIONS
    scope_family = "workflows"
    read_actions = ("test", "validate")
    action_permissions = {
        "activate": ["automations.change_workflow", cap.ACTIVATE_WORKFLOW],
        "pause": ["automations.change_workflow", cap.ACTIVATE_WORKFLOW],
        "test": ["automations.view_workflow"],
        "versions": ["automations.view_workflow", "automations.view_workflowversion"],
        "validate": ["automations.view_workflow"],
    }
    serializer_class = WorkflowSerializer
    filterset_class = WorkflowFilterSet
    queryset = Workflow.objects.none()

    def get_queryset(self):
        return selectors.workflow_list().order_by("name", "pk")

    @extend_schema(request=WorkflowInputSerializer, responses={201: WorkflowSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        fields = _input(request)
        workflow = services.workflow_create(
            user=request.user,
            name=fields.pop("name", ""),
            definition=fields.pop("definition", None) or {},
            **fields,
        )
        return Response(WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WorkflowInputSerializer, responses=WorkflowSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        fields = _input(request, partial=True)
        workflow = services.workflow_update(workflow=self.get_object(), user=request.user, **fields)
        return Response(WorkflowSerializer(workflow).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.workflow_delete(workflow=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=WorkflowSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        workflow = services.workflow_activate(workflow=self.get_object(), user=request.user)
        return Response(WorkflowSerializer(workflow).data)

    @extend_schema(request=None, responses=WorkflowSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        workflow = services.workflow_pause(workflow=self.get_object(), user=request.user)
        return Response(WorkflowSerializer(workflow).data)

    @extend_schema(request=TestInputSerializer, responses=dict)
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        from apps.customers.models import Customer

        serializer = TestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = get_object_or_404(Customer, pk=serializer.validated_data["customer"])
        trace = services.workflow_test(
            workflow=self.get_object(),
            definition=serializer.validated_data.get("definition"),
            customer=customer,
            subject=serializer.validated_data.get("subject"),
        )
        return Response(trace)

    @extend_schema(responses=WorkflowVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        versions = selectors.workflow_versions(workflow=self.get_object())
        return Response(WorkflowVersionSerializer(versions, many=True).data)

    @extend_schema(request=ValidateInputSerializer, responses=dict)
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        """Validate a definition without saving: {"valid", "errors": [{path, message}]}."""
        serializer = ValidateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        errors = definition_validate(serializer.validated_data["definition"])
        return Response(
            {"valid": not errors, "errors": [{"path": error.path, "message": error.message} for error in errors]}
        )


class WorkflowRunViewSet(IdempotentMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = API_PERMISSIONS
    scope_family = "workflows"
    action_permissions = {"replay": ["automations.change_workflowrun"]}
    serializer_class = WorkflowRunSerializer
    filterset_class = WorkflowRunFilterSet

    def get_queryset(self):
        return selectors.run_list().order_by("-created_at", "-pk")

    @extend_schema(request=None, responses=WorkflowRunSerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        run = services.run_replay(run=self.get_object(), user=request.user)
        return Response(WorkflowRunSerializer(selectors.run_list().get(pk=run.pk)).data)


class WorkflowFieldsView(APIView):
    """The field catalog, triggers and actions (for builders and integrators)."""

    permission_classes = API_PERMISSIONS
    scope_family = "workflows"
    action_permissions = {"get": ["automations.view_workflow"]}

    @extend_schema(responses=dict)
    def get(self, request: Request) -> Response:
        from loyalty_site.lib.conditions import catalog_describe

        from ..registry import registry_describe

        return Response({**catalog_describe(), **registry_describe()})
