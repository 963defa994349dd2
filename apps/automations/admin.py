"""
Admin for workflows (JSON editable, validated by the same services as the API), versions, and runs with
their steps (replay action for dead/failed runs).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest

from apps.platform.capabilities import ACTIVATE_WORKFLOW
from apps.tagging.selectors import condition_suggestions
from loyalty_site.lib.forms import BoundedJSONField, ConditionField

from . import services
from .choices import RunStatus, WorkflowStatus
from .definitions import definition_validate
from .models import Workflow, WorkflowRun, WorkflowRunStep, WorkflowVersion
from .secret_params import definition_redact

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class WorkflowAdminForm(forms.ModelForm):
    """The definition as JSON; every error of the definition and settings is shown with its path."""

    definition = BoundedJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "class": "wf-json"})
    )
    audience = ConditionField(
        scopes=("customer",),
        audience=True,
        suggestions=condition_suggestions,
        empty_label="No audience condition: every customer.",
        help_text="Bulk trigger only: which customers a run goes over.",
    )

    class Meta:
        model = Workflow
        fields = [
            "name",
            "description",
            "definition",
            *services.SETTING_FIELDS,
        ]

    class Media:
        css = {"all": ["automations/admin.css"]}  # a class, not a style attribute: the CSP refuses those

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "message_priority" in self.fields:  # empty = 0 (no priority)
            self.fields["message_priority"].required = False
        if self.instance.pk:  # secrets read "whsec_…redacted"; saved back as such they are kept
            self.initial["definition"] = definition_redact(self.instance.definition)

    def clean(self) -> dict[str, Any]:
        super().clean()  # (ModelForm.clean returns cleaned_data; the stubs allow None)
        cleaned = self.cleaned_data
        definition = cleaned.get("definition")
        if definition is None:
            return cleaned
        problems = definition_validate(definition)
        trigger = (definition.get("trigger") or {}).get("event", "") if isinstance(definition, dict) else ""
        settings = {name: cleaned.get(name) for name in services.SETTING_FIELDS if name in cleaned}
        _, setting_problems = services.settings_clean(settings, trigger=trigger)
        audience_problems = [(p.path, p.message) for p in setting_problems if (p.path or "").startswith("audience")]
        for problem in [*problems, *setting_problems]:
            if not (problem.path or "").startswith("audience"):
                self.add_error(None, f"{problem.path or 'definition'}: {problem.message}")
        if audience_problems:
            field = self.fields["audience"]
            assert isinstance(field, ConditionField)
            self.add_error("audience", field.rejection(audience_problems, cleaned.get("audience")))
        return cleaned


@admin.action(description="Activate (publish a new version)", permissions=["activate"])
def activate_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
    done, failed = 0, []
    for workflow in queryset:
        try:
            services.workflow_activate(workflow=workflow, user=request.user)
            done += 1
        except ValidationError as error:
            failed.append(f"{workflow.name}: {'; '.join(error.messages)}")
    modeladmin.message_user(request, f"{done} workflow(s) activated.", messages.SUCCESS)
    if failed:
        modeladmin.message_user(request, "Not activated — " + " | ".join(failed[:10]), messages.WARNING)


@admin.action(description="Pause (waiting runs are held)", permissions=["activate"])
def pause_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
    done = 0
    for workflow in queryset.filter(status=WorkflowStatus.ACTIVE):
        services.workflow_pause(workflow=workflow, user=request.user)
        done += 1
    modeladmin.message_user(request, f"{done} workflow(s) paused.", messages.SUCCESS)


def _bulk_run_now() -> list[Any]:
    try:
        from .bulk import admin_action_run_now
    except ImportError:  # pragma: no cover - bulk module absent
        return []
    return [admin.action(description="Run the bulk workflow now", permissions=["activate"])(admin_action_run_now)]


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    readonly_fields = fields = ("number", "trigger", "created_by", "created_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RunCounts(TypedDict):
    """What `WorkflowAdmin.get_queryset` annotates on each workflow."""

    n_succeeded: int
    n_waiting: int
    n_dead: int


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowAdminForm
    list_display = [
        "name",
        "trigger",
        "status",
        "version_number",
        "has_unpublished_changes",
        "runs_succeeded",
        "runs_waiting",
        "runs_dead",
        "updated_at",
    ]
    list_filter = ["status", "trigger", "has_unpublished_changes"]
    search_fields = ["name", "description"]
    readonly_fields = [
        "trigger",
        "status",
        "current_version",
        "has_unpublished_changes",
        "next_run_at",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
    ]
    inlines = [WorkflowVersionInline]
    actions = [activate_selected, pause_selected, *_bulk_run_now()]

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perms(["automations.change_workflow", ACTIVATE_WORKFLOW])

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super()
            .get_queryset(request)
            .select_related("current_version")
            .annotate(
                n_succeeded=Count("runs", filter=Q(runs__status=RunStatus.SUCCEEDED)),
                n_waiting=Count("runs", filter=Q(runs__status=RunStatus.WAITING)),
                n_dead=Count("runs", filter=Q(runs__status=RunStatus.DEAD)),
            )
        )

    @admin.display(description="Version", ordering="current_version__number")
    def version_number(self, obj: Workflow) -> Any:
        return obj.current_version.number if obj.current_version else "—"

    @admin.display(description="Succeeded", ordering="n_succeeded")
    def runs_succeeded(self, obj: WithAnnotations[Workflow, RunCounts]) -> int:
        return obj.n_succeeded

    @admin.display(description="Waiting", ordering="n_waiting")
    def runs_waiting(self, obj: WithAnnotations[Workflow, RunCounts]) -> int:
        return obj.n_waiting

    @admin.display(description="Dead", ordering="n_dead")
    def runs_dead(self, obj: WithAnnotations[Workflow, RunCounts]) -> int:
        return obj.n_dead

    def save_model(self, request: HttpRequest, obj: Workflow, form: forms.ModelForm, change: bool) -> None:
        fields = {name: form.cleaned_data.get(name) for name in services.SETTING_FIELDS}
        fields["schedule_cron"] = fields.get("schedule_cron") or ""
        if change:
            saved = services.workflow_update(
                workflow=obj,
                user=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data.get("description", ""),
                definition=form.cleaned_data["definition"],
                **fields,
            )
        else:
            saved = services.workflow_create(
                user=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data.get("description", ""),
                definition=form.cleaned_data["definition"],
                **fields,
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Workflow) -> None:
        services.workflow_delete(workflow=obj)


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ["workflow", "number", "trigger", "created_by", "created_at"]
    list_filter = ["trigger"]
    search_fields = ["workflow__name"]
    list_select_related = ["workflow", "created_by"]
    readonly_fields = [
        "workflow",
        "number",
        "trigger",
        "pretty_definition",
        "pretty_settings",
        "created_by",
        "created_at",
    ]
    exclude = ["definition", "settings"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Definition")
    def pretty_definition(self, obj: WorkflowVersion) -> str:
        return json.dumps(definition_redact(obj.definition), indent=2, ensure_ascii=False)

    @admin.display(description="Settings")
    def pretty_settings(self, obj: WorkflowVersion) -> str:
        return json.dumps(obj.settings, indent=2, ensure_ascii=False)


class WorkflowRunStepInline(admin.TabularInline):
    model = WorkflowRunStep
    readonly_fields = fields = (
        "path",
        "step_id",
        "kind",
        "status",
        "branch",
        "inputs",
        "outcome",
        "error",
        "started_at",
        "finished_at",
    )
    extra = 0
    can_delete = False
    ordering = ["pk"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Replay (dead or failed runs)", permissions=["change"])
def replay_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
    done, skipped = 0, 0
    for run in queryset:
        try:
            services.run_replay(run=run, user=request.user)
            done += 1
        except ValidationError:
            skipped += 1
    modeladmin.message_user(request, f"{done} run(s) queued again.", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(request, f"{skipped} skipped: only dead or failed runs replay.", messages.WARNING)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "workflow",
        "version_number",
        "kind",
        "customer",
        "status",
        "skip_reason",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "kind", "workflow"]
    search_fields = ["=id", "workflow__name", "customer__email", "customer__external_id", "skip_reason"]
    list_select_related = ["workflow", "version", "customer"]
    date_hierarchy = "created_at"
    inlines = [WorkflowRunStepInline]
    actions = [replay_selected]
    raw_id_fields = ["customer", "trigger_event"]
    readonly_fields = [
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
        "context",
        "error",
        "slot",
        "progress",
        "started_by",
        "started_at",
        "finished_at",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Version", ordering="version__number")
    def version_number(self, obj: WorkflowRun) -> Any:
        return obj.version.number if obj.version else "—"
