"""
Builder pages: the workflow list, the builder itself and its JSON endpoints (save, activate, pause, run now,
test run, customer autocomplete, test subjects), and versions.

Every write calls an engine service; validation errors come back as {path: message} and are returned to the
page as the API's `{"errors": [{"path", "message"}]}` shape so the builder can show them on their cards.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.automations import bulk, services
from apps.automations.builder import boot as boot_data
from apps.automations.choices import RunStatus, WorkflowStatus
from apps.automations.models import Workflow, WorkflowVersion
from apps.automations.secret_params import definition_redact
from apps.automations.selectors import state_tag_carriers, state_tag_summary, waiting_runs_by_version
from apps.customers.models import Cart, Customer, CustomerEvent, DraftOrder, Order
from apps.platform.capabilities import ACTIVATE_WORKFLOW
from apps.tagging.selectors import condition_suggestions
from loyalty_site.lib.json_limits import json_text_error

VIEW = "automations.view_workflow"
CHANGE = "automations.change_workflow"
ACTIVATE = ACTIVATE_WORKFLOW


def page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    from django.contrib import admin

    return {**admin.site.each_context(request), **extra}


def can(*perms: str):
    """Staff AND every named permission (403 otherwise); `is_staff` alone opens nothing."""

    def decorate(view):
        return staff_member_required(permission_required(perms, raise_exception=True)(view))

    return decorate


def query_text(request: HttpRequest, name: str) -> str:
    """A GET parameter as search text: stripped, NUL characters dropped (PostgreSQL refuses them in a query)."""
    return request.GET.get(name, "").replace("\x00", "").strip()


def as_id(value: str) -> int | None:
    """A primary key typed by a user, or None when it is not one (`abc`, `1.5`, `²`, 20 digits)."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def error_response(error: Exception, status: int = 400) -> JsonResponse:
    return JsonResponse(
        {"error": "invalid", "message": "Please fix the errors.", "errors": boot_data.error_list(error)}, status=status
    )


# --- Workflow list -------------------------------------------------------------------------------


@can(VIEW)
def workflow_list(request: HttpRequest) -> HttpResponse:
    since = timezone.now() - timedelta(days=7)
    runs = "runs"
    workflows = Workflow.objects.annotate(
        runs_succeeded=Count(
            runs, filter=Q(**{f"{runs}__created_at__gte": since, f"{runs}__status": RunStatus.SUCCEEDED})
        ),
        runs_skipped=Count(runs, filter=Q(**{f"{runs}__created_at__gte": since, f"{runs}__status": RunStatus.SKIPPED})),
        runs_failed=Count(
            runs,
            filter=Q(**{f"{runs}__created_at__gte": since, f"{runs}__status__in": [RunStatus.FAILED, RunStatus.DEAD]}),
        ),
        last_run_at=Max(f"{runs}__created_at"),
    ).select_related("current_version")
    query = query_text(request, "q")
    status = query_text(request, "status")
    trigger = query_text(request, "trigger")
    if query:
        workflows = workflows.filter(Q(name__icontains=query) | Q(description__icontains=query))
    if status:
        workflows = workflows.filter(status=status)
    if trigger:
        workflows = workflows.filter(trigger=trigger)
    workflows = workflows.order_by("-updated_at", "-pk")
    page = Paginator(workflows, 50).get_page(request.GET.get("page"))
    triggers = {spec["name"]: spec for spec in boot_data.triggers_payload()}
    carriers = state_tag_carriers(workflows=list(page))
    rows = [
        {
            "workflow": workflow,
            "trigger": triggers.get(workflow.trigger, {"label": workflow.trigger}),
            "carriers": carriers.get(workflow.pk),
        }
        for workflow in page
    ]
    return render(
        request,
        "automations/builder/workflow_list.html",
        page_context(
            request,
            title="Workflows",
            section="workflows",
            rows=rows,
            page_obj=page,
            query=query,
            status=status,
            trigger=trigger,
            statuses=[status.value for status in WorkflowStatus],
            triggers=sorted(triggers.values(), key=lambda spec: spec["label"]),
            can_change=request.user.has_perm(CHANGE),
            can_activate=request.user.has_perms([CHANGE, ACTIVATE]),
        ),
    )


@can(CHANGE, ACTIVATE)
@require_POST
def workflow_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        if workflow.status == WorkflowStatus.ACTIVE:
            services.workflow_pause(workflow=workflow, user=request.user)
            messages.success(request, f"“{workflow.name}” is paused.")
        else:
            services.workflow_activate(workflow=workflow, user=request.user)
            messages.success(request, f"“{workflow.name}” is active.")
    except ValidationError as error:
        messages.error(request, f"“{workflow.name}”: " + " ".join(e["message"] for e in boot_data.error_list(error)))
    return redirect(request.POST.get("next") or reverse("automations:workflow_list"))


# --- Builder -------------------------------------------------------------------------------------


def builder_boot(
    request: HttpRequest, workflow: Any | None, *, definition=None, settings=None, read_only=False
) -> dict:
    catalog = boot_data.catalog_payload()
    urls = boot_data.urls_payload()
    urls["save"] = reverse("automations:builder_save", args=[workflow.pk]) if workflow else urls["save_new"]
    trigger = request.GET.get("trigger", "")
    if workflow is None:
        data = {
            "id": None,
            "name": "",
            "description": "",
            "status": WorkflowStatus.DRAFT.value,
            "version": None,
            "definition": {"schema": 1, "trigger": {"event": trigger}, "steps": []},
            "settings": dict.fromkeys(boot_data.SETTING_NAMES),
            "waiting_runs": 0,
        }
    else:
        data = boot_data.workflow_payload(workflow)
    if definition is not None:
        data["definition"] = definition_redact(definition)
    if settings is not None:
        data["settings"] = settings
    return {
        "workflow": data,
        "catalog": catalog,
        "suggestions": condition_suggestions(),
        "settings_schema": boot_data.SETTINGS_SCHEMA,
        "urls": urls,
        "can_change": request.user.has_perm(CHANGE) and not read_only,
        "can_activate": request.user.has_perms([CHANGE, ACTIVATE]) and not read_only,
        "read_only": read_only,
    }


@can(VIEW)
def builder_new(request: HttpRequest) -> HttpResponse:
    boot = builder_boot(request, None)
    return render(
        request,
        "automations/builder/builder.html",
        page_context(request, title="New workflow", section="workflows", boot=boot),
    )


@can(VIEW)
def builder_edit(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    boot = builder_boot(request, workflow)
    return render(
        request,
        "automations/builder/builder.html",
        page_context(
            request,
            title=workflow.name,
            section="workflows",
            boot=boot,
            workflow_id=workflow.pk,
            state_tag=state_tag_summary(workflow),
        ),
    )


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        text = (request.body or b"{}").decode()
    except UnicodeDecodeError:
        raise ValidationError({"": "The request body is not JSON."}) from None
    too_deep = json_text_error(text)  # before json recurses into it
    if too_deep is not None:
        raise ValidationError({too_deep.path: f"The JSON is {too_deep.message}."})
    try:
        body = json.loads(text)
    except ValueError:
        raise ValidationError({"": "The request body is not JSON."}) from None
    if not isinstance(body, dict):
        raise ValidationError({"": "Expected a JSON object."})
    return body


def _save_fields(body: dict[str, Any]) -> dict[str, Any]:
    settings = body.get("settings") or {}
    fields: dict[str, Any] = {
        "name": str(body.get("name") or "").strip(),
        "description": str(body.get("description") or ""),
        "definition": body.get("definition") or {},
    }
    for name in boot_data.SETTING_NAMES:
        if name in settings:
            value = settings[name]
            fields[name] = None if value == "" else value
    if fields.get("schedule_cron") is None and "schedule_cron" in fields:
        fields["schedule_cron"] = ""
    return fields


@can(CHANGE)
@require_POST
def builder_save(request: HttpRequest, pk: int | None = None) -> JsonResponse:
    try:
        fields = _save_fields(_json_body(request))
        if pk is None:
            workflow = services.workflow_create(user=request.user, **fields)
            message = f"Draft “{workflow.name}” created."
        else:
            workflow = get_object_or_404(Workflow, pk=pk)
            workflow = services.workflow_update(workflow=workflow, user=request.user, **fields)
            message = (
                "Saved."
                if workflow.status != WorkflowStatus.ACTIVE
                else "Saved. Activate to publish these changes as a new version."
            )
    except ValidationError as error:
        return error_response(error)
    payload = {"workflow": boot_data.workflow_payload(workflow), "message": message}
    if pk is None:
        payload["redirect"] = reverse("automations:builder", args=[workflow.pk])
    return JsonResponse(payload)


@can(CHANGE, ACTIVATE)
@require_POST
def builder_activate(request: HttpRequest, pk: int) -> JsonResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        workflow = services.workflow_activate(workflow=workflow, user=request.user)
    except ValidationError as error:
        return error_response(error)
    version = boot_data.workflow_payload(workflow)["version"]
    return JsonResponse(
        {"workflow": boot_data.workflow_payload(workflow), "message": f"Active — version {version} is live."}
    )


@can(VIEW)
def builder_state(request: HttpRequest, pk: int) -> JsonResponse:
    """A state tag's tag and how many customers carry it now (the builder polls it after an activation)."""
    workflow = get_object_or_404(Workflow, pk=pk)
    return JsonResponse({"status": workflow.status, "state": state_tag_summary(workflow)})


@can(CHANGE, ACTIVATE)
@require_POST
def builder_pause(request: HttpRequest, pk: int) -> JsonResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        workflow = services.workflow_pause(workflow=workflow, user=request.user)
    except ValidationError as error:
        return error_response(error)
    return JsonResponse(
        {
            "workflow": boot_data.workflow_payload(workflow),
            "message": "Paused. Waiting runs are held until you activate it again.",
        }
    )


@can(CHANGE, ACTIVATE)
@require_POST
def builder_run_now(request: HttpRequest, pk: int) -> JsonResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        run = bulk.bulk_run_start(workflow=workflow, user=request.user)
    except ValidationError as error:
        return error_response(error)
    return JsonResponse(
        {
            "workflow": boot_data.workflow_payload(workflow),
            "message": f"Bulk run #{run.pk} started.",
            "redirect": reverse("automations:run_detail", args=[run.pk]),
        }
    )


@can(VIEW)
@require_POST
def builder_test(request: HttpRequest) -> JsonResponse:
    try:
        body = _json_body(request)
        customer_id = body.get("customer")
        customer = Customer.objects.filter(pk=customer_id).first() if customer_id is not None else None
        if customer is None:
            raise ValidationError({"customer": "Choose a customer to test with."})
        trace = services.workflow_test(
            definition=body.get("definition") or {},
            customer=customer,
            subject=body.get("subject") or None,
        )
    except ValidationError as error:
        return error_response(error)
    return JsonResponse(trace)


@can(VIEW)
def customer_search(request: HttpRequest) -> JsonResponse:
    term = query_text(request, "q")
    customers = Customer.objects.all()
    if term.isdigit():
        pk = as_id(term)
        by_id = Q(pk=pk) if pk is not None else Q(pk__in=[])
        customers = customers.filter(by_id | Q(external_id=term) | Q(phone__contains=term))
    elif term:
        for word in term.split()[:4]:
            customers = customers.filter(
                Q(email__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(external_id=word)
            )
    results = [
        {"id": customer.pk, "label": _customer_label(customer)}
        for customer in customers.order_by("-last_order_at", "-pk")[:10]
    ]
    return JsonResponse({"results": results})


def _customer_label(customer: Customer) -> str:
    name = f"{customer.first_name} {customer.last_name}".strip()
    parts = [name or None, customer.email or None, f"#{customer.pk}"]
    return " · ".join(part for part in parts if part)


@can(VIEW)
def test_subjects(request: HttpRequest) -> JsonResponse:
    customer = get_object_or_404(Customer, pk=as_id(request.GET.get("customer", "")) or 0)
    trigger = request.GET.get("trigger", "")
    spec = boot_data.trigger_lookup(trigger)
    subject = spec["subject"] if spec else None
    results: list[dict[str, Any]] = []
    if subject == "order":
        for order in Order.objects.filter(customer=customer).order_by("-placed_at", "-pk")[:10]:
            label = f"Order #{order.pk} · {order.total} {order.currency} · {order.channel} · {order.placed_at:%Y-%m-%d}"
            results.append({"id": order.pk, "label": label})
    elif subject == "cart":
        for cart in Cart.objects.filter(customer=customer).order_by("-updated_at", "-pk")[:10]:
            results.append(
                {"id": cart.pk, "label": f"Cart #{cart.pk} · {cart.total} {cart.currency} · {len(cart.lines)} lines"}
            )
    elif subject == "draft order":
        for draft in DraftOrder.objects.filter(customer=customer).order_by("-created_at", "-pk")[:10]:
            results.append({"id": draft.pk, "label": f"Draft order #{draft.pk} · {draft.total} {draft.currency}"})
    elif subject == "event":
        for event in CustomerEvent.objects.filter(customer=customer).order_by("-occurred_at", "-pk")[:10]:
            results.append({"id": event.pk, "label": f"{event.name} · {event.occurred_at:%Y-%m-%d %H:%M}"})
    return JsonResponse({"subject": subject, "results": results})


# --- Versions ------------------------------------------------------------------------------------


@can(VIEW)
def version_list(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    versions = WorkflowVersion.objects.filter(workflow=workflow).select_related("created_by").order_by("-number")
    return render(
        request,
        "automations/builder/version_list.html",
        page_context(
            request,
            title=f"Versions of {workflow.name}",
            section="workflows",
            workflow=workflow,
            versions=versions,
            waiting=waiting_runs_by_version(workflow=workflow),
            can_change=request.user.has_perm(CHANGE),
        ),
    )


@can(VIEW)
def version_detail(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    version = get_object_or_404(WorkflowVersion, workflow=workflow, number=number)
    boot = builder_boot(
        request,
        workflow,
        definition=version.definition,
        settings=boot_data.version_settings(version),
        read_only=True,
    )
    boot["workflow"]["status"] = "read-only"
    boot["workflow"]["version"] = version.number
    boot["read_only_reason"] = (
        f"You are looking at version {version.number} (read-only), frozen "
        f"{timezone.localtime(version.created_at):%Y-%m-%d %H:%M} by {version.created_by or 'the system'}."
    )
    return render(
        request,
        "automations/builder/builder.html",
        page_context(
            request,
            title=workflow.name,
            section="workflows",
            boot=boot,
            workflow_id=workflow.pk,
            version_label=f"Version {version.number}",
            restore_url=reverse("automations:version_restore", args=[workflow.pk, version.number]),
        ),
    )


@can(CHANGE)
@require_POST
def version_restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    workflow = get_object_or_404(Workflow, pk=pk)
    version = get_object_or_404(WorkflowVersion, workflow=workflow, number=number)
    fields = {"definition": version.definition, **boot_data.version_settings(version)}
    fields = {key: value for key, value in fields.items() if key in {"definition", *boot_data.SETTING_NAMES}}
    try:
        services.workflow_update(workflow=workflow, user=request.user, **fields)
    except ValidationError as error:
        messages.error(request, "Could not restore: " + " ".join(e["message"] for e in boot_data.error_list(error)))
        return redirect("automations:versions", pk=workflow.pk)
    messages.success(request, f"Version {version.number} restored as the current draft. Activate it to publish.")
    return redirect("automations:builder", pk=workflow.pk)
