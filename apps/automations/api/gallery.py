"""API for the template gallery (list, show, install) and for starting a bulk run now."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.automations import bulk, gallery
from apps.automations.secret_params import definition_redact
from apps.platform import capabilities as cap
from apps.platform.idempotency import IdempotentMixin
from apps.platform.permissions import API_PERMISSIONS
from loyalty_site.lib.api.pagination import StandardPagination


class TemplateParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # declared fields leave the class body (SerializerMetaclass): no clash with Field.label
    type = serializers.CharField()
    default = serializers.JSONField()
    help = serializers.CharField()


class WorkflowTemplateSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    trigger = serializers.CharField()
    kind = serializers.CharField(help_text="event, bulk or state (a state tag)")
    category = serializers.CharField()
    params = TemplateParamSerializer(many=True)


class WorkflowTemplateDetailSerializer(WorkflowTemplateSerializer):
    preview = serializers.JSONField(help_text="The definition and settings built from the default params.")


class TemplateInstallInputSerializer(serializers.Serializer):
    params = serializers.DictField(required=False, default=dict)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    activate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Activate the installed workflow in the same call (needs the activate_workflow permission).",
    )


class InstalledWorkflowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    trigger = serializers.CharField()
    template = serializers.CharField()
    kind = serializers.CharField(help_text="event, bulk or state (a state tag)")
    installed_with = serializers.ListField(
        child=serializers.IntegerField(), help_text="The other workflows installed with it (one per tier of a group)."
    )
    version = serializers.IntegerField(allow_null=True)
    definition = serializers.JSONField()


def workflow_payload(workflow) -> dict:
    return {
        "id": workflow.pk,
        "name": workflow.name,
        "status": workflow.status,
        "trigger": getattr(workflow, "trigger", "") or workflow.definition.get("trigger", {}).get("event", ""),
        "template": getattr(workflow, "template", ""),
        "kind": getattr(workflow, "kind", "event"),
        "installed_with": [sibling.pk for sibling in getattr(workflow, "installed_with", [])],
        "version": workflow.current_version.number if getattr(workflow, "current_version", None) else None,
        "definition": definition_redact(workflow.definition),
        "schedule_cron": getattr(workflow, "schedule_cron", ""),
        "audience": getattr(workflow, "audience", None),
    }


class WorkflowTemplateViewSet(IdempotentMixin, viewsets.ViewSet):
    """Ready-made, parameterised workflows; installing one creates an ordinary draft workflow."""

    permission_classes = API_PERMISSIONS
    scope_family = "workflows"
    action_permissions = {
        "list": ["automations.view_workflow"],
        "retrieve": ["automations.view_workflow"],
        "install": ["automations.add_workflow"],
    }

    lookup_field = "key"
    lookup_value_regex = "[a-z0-9_]+"
    pagination_class = StandardPagination

    @extend_schema(responses=WorkflowTemplateSerializer(many=True))
    def list(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset([spec.as_dict() for spec in gallery.template_list()], request, view=self)
        return paginator.get_paginated_response(page)

    @extend_schema(responses=WorkflowTemplateDetailSerializer)
    def retrieve(self, request: Request, key: str) -> Response:
        spec = gallery.TEMPLATES.get(key)
        if spec is None:
            return Response(
                {"error": "not_found", "message": f"Unknown template {key!r}.", "errors": []},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response({**spec.as_dict(), "preview": spec.build({})})

    @extend_schema(request=TemplateInstallInputSerializer, responses={201: InstalledWorkflowSerializer})
    @action(detail=True, methods=["post"])
    def install(self, request: Request, key: str) -> Response:
        if key not in gallery.TEMPLATES:
            return Response(
                {"error": "not_found", "message": f"Unknown template {key!r}.", "errors": []},
                status=status.HTTP_404_NOT_FOUND,
            )
        payload = TemplateInstallInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        activate = bool(payload.validated_data.get("activate"))
        if activate and not request.user.has_perm(cap.ACTIVATE_WORKFLOW):
            raise PermissionDenied(f"Missing permission: {cap.ACTIVATE_WORKFLOW}.")
        workflow = gallery.template_install(
            key=key,
            params=payload.validated_data.get("params") or {},
            user=request.user,
            name=payload.validated_data.get("name") or None,
            activate=activate,
        )
        return Response(workflow_payload(workflow), status=status.HTTP_201_CREATED)


class BulkRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workflow = serializers.IntegerField()
    status = serializers.CharField()
    slot = serializers.CharField(allow_null=True)
    progress = serializers.JSONField()


class WorkflowRunNowView(IdempotentMixin, APIView):
    """POST /api/v1/workflows/<id>/run/: start a bulk run of a bulk-activity workflow now."""

    permission_classes = API_PERMISSIONS
    scope_family = "workflows"
    action_permissions = {"post": ["automations.view_workflow", cap.ACTIVATE_WORKFLOW]}

    @extend_schema(request=None, responses={202: BulkRunSerializer})
    def post(self, request: Request, pk: int) -> Response:
        from apps.automations.models import Workflow

        workflow = get_object_or_404(Workflow, pk=pk)
        run = bulk.bulk_run_start(workflow=workflow, user=request.user)
        return Response(bulk.bulk_run_payload(run), status=status.HTTP_202_ACCEPTED)
