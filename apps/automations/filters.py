"""FilterSets of workflows and runs (API and pages)."""

import django_filters

from .choices import RunKind, RunStatus, WorkflowStatus
from .models import Workflow, WorkflowRun


class WorkflowFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=WorkflowStatus.choices)
    trigger = django_filters.CharFilter()
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    template = django_filters.CharFilter(label="Installed from template (key)")

    class Meta:
        model = Workflow
        fields = ["status", "trigger", "q", "template"]


class WorkflowRunFilterSet(django_filters.FilterSet):
    workflow = django_filters.NumberFilter(field_name="workflow_id")
    customer = django_filters.NumberFilter(field_name="customer_id")
    status = django_filters.MultipleChoiceFilter(choices=RunStatus.choices)
    kind = django_filters.ChoiceFilter(choices=RunKind.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    date = django_filters.DateFilter(field_name="created_at", lookup_expr="date", label="Created on (date)")
    template = django_filters.CharFilter(
        field_name="workflow__template", label="Workflow installed from template (key)"
    )

    class Meta:
        model = WorkflowRun
        fields = ["workflow", "customer", "status", "kind", "created_after", "created_before", "date", "template"]
