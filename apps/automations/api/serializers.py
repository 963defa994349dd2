from rest_framework import serializers

from apps.customers.models import DomainEvent
from loyalty_site.lib.api.ranges import BoundedInputMixin

from ..models import Workflow, WorkflowRun, WorkflowRunStep, WorkflowVersion
from ..secret_params import definition_redact
from ..services import SETTING_FIELDS


class RedactedDefinitionField(serializers.JSONField):
    """A workflow definition as shown: secrets (webhook signing secrets) read "whsec_…redacted"."""

    def to_representation(self, value):
        return super().to_representation(definition_redact(value))


class WorkflowSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="current_version.number", read_only=True, default=None, allow_null=True)
    kind = serializers.CharField(read_only=True, help_text="event, bulk or state (a state tag)")
    carriers = serializers.SerializerMethodField(help_text="A state tag: how many customers carry its tag now.")

    def get_carriers(self, workflow: Workflow) -> int | None:
        from ..selectors import state_tag_carriers

        if workflow.kind != "state":
            return None
        return state_tag_carriers(workflows=[workflow]).get(workflow.pk)

    class Meta:
        model = Workflow
        fields = [
            "id",
            "name",
            "description",
            "trigger",
            "definition",
            "status",
            "version",
            "has_unpublished_changes",
            "template",
            "kind",
            "carriers",
            *SETTING_FIELDS,
            "next_run_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "trigger",
            "status",
            "has_unpublished_changes",
            "template",
            "next_run_at",
            "created_at",
            "updated_at",
        ]

    definition = RedactedDefinitionField()


class WorkflowInputSerializer(BoundedInputMixin, serializers.Serializer):
    """Shape only; the service validates the definition and settings and names every error's path."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    definition = serializers.JSONField(required=False)
    active_from = serializers.DateTimeField(required=False, allow_null=True)
    active_until = serializers.DateTimeField(required=False, allow_null=True)
    max_runs_per_customer = serializers.IntegerField(required=False, allow_null=True)
    max_runs_period_days = serializers.IntegerField(required=False, allow_null=True)
    min_interval_minutes = serializers.IntegerField(required=False, allow_null=True)
    holdout_percent = serializers.IntegerField(required=False, allow_null=True)
    message_priority = serializers.IntegerField(required=False, allow_null=True)
    schedule_cron = serializers.CharField(required=False, allow_blank=True, max_length=100)
    audience = serializers.JSONField(required=False, allow_null=True)


class WorkflowVersionSerializer(serializers.ModelSerializer):
    waiting_runs = serializers.IntegerField(read_only=True)

    class Meta:
        model = WorkflowVersion
        fields = ["id", "number", "trigger", "definition", "settings", "created_at", "waiting_runs"]

    definition = RedactedDefinitionField(read_only=True)


class ValidateInputSerializer(serializers.Serializer):
    definition = serializers.JSONField()


class TestInputSerializer(BoundedInputMixin, serializers.Serializer):
    customer = serializers.IntegerField()
    subject = serializers.IntegerField(required=False, allow_null=True, help_text="Order/cart/draft/event id.")
    definition = serializers.JSONField(required=False, help_text="Test this definition instead of the saved one.")


class WorkflowRunStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkflowRunStep
        fields = [
            "step_id",
            "path",
            "kind",
            "status",
            "branch",
            "inputs",
            "outcome",
            "error",
            "started_at",
            "finished_at",
        ]


class WorkflowRunSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True, default=None, allow_null=True)
    trigger_event: "serializers.PrimaryKeyRelatedField[DomainEvent]" = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    steps = WorkflowRunStepSerializer(many=True, read_only=True)

    class Meta:
        model = WorkflowRun
        fields = [
            "id",
            "workflow",
            "version",
            "kind",
            "trigger_event",
            "customer",
            "status",
            "skip_reason",
            "depth",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "resume_at",
            "resume_step",
            "error",
            "slot",
            "progress",
            "started_at",
            "finished_at",
            "created_at",
            "steps",
        ]
