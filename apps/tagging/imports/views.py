"""
The console's CSV import pages (mounted at /admin/tagging/imports/): upload (size capped before the body is
parsed), preview of the first rows with the column mapping (guessed, editable), the background import's
progress and its rejected rows with line and column. Each kind needs its own permission
(`tagging.import_customers`, `…import_orders`, `…import_exchange_rates`); reading the list needs
`tagging.view_importjob`.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from loyalty_site.lib.errors import DomainError

from ..choices import ImportKind, ImportStatus
from ..models import ImportJob
from . import rows as csv_rows
from . import services

PREVIEW_ROWS = 10
# Multipart overhead allowed on top of the file itself when the body's length is checked before parsing.
ENVELOPE_BYTES = 64 * 1024


def _kinds_for(user: Any) -> list[tuple[str, str]]:
    return [(kind.value, kind.label) for kind in ImportKind if user.has_perm(services.IMPORT_PERMISSIONS[kind])]


def _page(request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    base = {**admin.site.each_context(request), "title": "Import CSV", "max_kb": services.max_bytes() // 1024}
    return render(request, "tagging/imports/import_list.html", {**base, **context}, status=status)


@staff_member_required
@permission_required("tagging.view_importjob", raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest) -> HttpResponse:
    """The upload form (kinds the user may import) and the recent imports."""
    kinds = _kinds_for(request.user)
    jobs = ImportJob.objects.select_related("created_by").defer("content", "errors")[:20]
    if request.method == "GET":
        return _page(request, {"kinds": kinds, "jobs": jobs})
    kind = request.POST.get("kind", "")
    errors: dict[str, str] = {}
    if kind not in ImportKind.values:
        errors["kind"] = "Choose what the file holds: customers, orders or exchange rates."
        return _page(request, {"kinds": kinds, "jobs": jobs, "errors": errors}, status=400)
    services.import_permission_check(user=request.user, kind=kind)
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    upload = None
    if length > services.max_bytes() + ENVELOPE_BYTES:
        errors["file"] = f"The file is larger than {services.max_bytes() // 1024} KB: split it."
    else:
        upload = request.FILES.get("file")
        if upload is None:
            errors["file"] = "Choose a CSV file."
        elif upload.size is not None and upload.size > services.max_bytes():
            errors["file"] = f"The file is larger than {services.max_bytes() // 1024} KB: split it."
    if upload is not None and not errors:
        try:
            job = services.import_job_create(
                kind=kind,
                file_name=upload.name or "upload.csv",
                raw=upload.read(services.max_bytes() + 1),
                user=request.user,
            )
        except DomainError as error:
            errors[error.path or "file"] = error.message
        else:
            return redirect("tagging-import-detail", pk=job.pk)
    return _page(request, {"kinds": kinds, "jobs": jobs, "errors": errors, "chosen_kind": kind}, status=400)


def _preview(job: ImportJob) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(job.content))
    next(reader, None)
    rows: list[tuple[int, list[str]]] = []
    for values in reader:
        if any(value.strip() for value in values):
            rows.append((reader.line_num, [value.strip() for value in values][: len(job.header)]))
        if len(rows) >= PREVIEW_ROWS:
            break
    return rows


@staff_member_required
@permission_required("tagging.view_importjob", raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A draft: preview and mapping (POST starts the import). Later: progress, then the outcome and errors."""
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    may_import = request.user.has_perm(services.IMPORT_PERMISSIONS[job.kind])
    errors: dict[str, str] = {}
    mapping = dict(job.mapping)
    status = 200
    if request.method == "POST":
        if not may_import:
            raise PermissionDenied
        mapping = {column: request.POST.get(f"mapping.{column}", "") for column in job.header}
        try:
            services.import_job_start(job=job, mapping=mapping, user=request.user)
        except DomainError as error:
            errors[error.path or "mapping"] = error.message
            status = 400
        else:
            return redirect("tagging-import-detail", pk=job.pk)
    columns = csv_rows.COLUMNS[job.kind]
    context = {
        **admin.site.each_context(request),
        "title": f"Import #{job.pk}: {job.get_kind_display()}",
        "job": job,
        "may_import": may_import,
        "errors": errors,
        "header": [
            {"name": name, "target": mapping.get(name, ""), "error": errors.get(f"mapping.{name}")}
            for name in job.header
        ],
        "columns": columns,
        "required": csv_rows.REQUIRED[job.kind],
        "preview": _preview(job) if job.status == ImportStatus.DRAFT else [],
        "in_progress": job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING),
    }
    return render(request, "tagging/imports/import_detail.html", context, status=status)


@staff_member_required
@permission_required("tagging.view_importjob", raise_exception=True)
@require_GET
def import_status(request: HttpRequest, pk: int) -> JsonResponse:
    """The progress bar's poll: status, done/total in the kind's units and the percentage."""
    job = get_object_or_404(ImportJob.objects.defer("content", "errors"), pk=pk)
    return JsonResponse(
        {
            "status": job.status,
            "status_label": job.get_status_display(),
            "done": job.progress_done,
            "total": job.progress_total,
            "percent": job.percent,
            "url": reverse("tagging-import-detail", args=[job.pk]),
        }
    )
