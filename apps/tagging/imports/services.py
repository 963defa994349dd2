"""
The console's CSV imports: create a job from an uploaded file, start it with the checked column mapping,
run it in the background (django-q2, `apps.tagging.tasks.import_job_run`) reporting progress on its row.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from loyalty_site.lib.errors import ConflictError, DomainError
from loyalty_site.lib.tasks import enqueue_on_commit

from ..choices import ImportKind, ImportStatus
from ..models import ImportJob
from . import rows as csv_rows

# Rejected rows kept on the job for the page (the count is always exact).
ERRORS_KEPT = 1000
IMPORT_PERMISSIONS: dict[str, str] = {
    ImportKind.CUSTOMERS: "tagging.import_customers",
    ImportKind.ORDERS: "tagging.import_orders",
    ImportKind.EXCHANGE_RATES: "tagging.import_exchange_rates",
}
TASK = "apps.tagging.tasks.import_job_run"


def max_bytes() -> int:
    return int(getattr(settings, "CSV_IMPORT_MAX_BYTES", 5 * 1024 * 1024))


def max_rows() -> int:
    return int(getattr(settings, "CSV_IMPORT_MAX_ROWS", 100_000))


def import_permission_check(*, user: Any, kind: str) -> None:
    """Raise PermissionDenied unless `user` may import files of `kind`."""
    permission = IMPORT_PERMISSIONS.get(kind)
    if permission is None or not user.has_perm(permission):
        raise PermissionDenied


def import_job_create(*, kind: str, file_name: str, raw: bytes, user: Any) -> ImportJob:
    """
    Store an uploaded CSV file as a draft job with its header and a guessed column mapping. `raw` must already
    be within `max_bytes()` (the view checks the upload's size before reading it).
    """
    import_permission_check(user=user, kind=kind)
    if len(raw) > max_bytes():
        raise DomainError(f"The file is larger than {max_bytes() // 1024} KB: split it.", path="file", code="too_large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError("The file is not UTF-8 text: save it as “CSV UTF-8”.", path="file", code="encoding") from None
    try:
        header = [name.strip() for name in next(csv.reader(io.StringIO(text)), [])]
    except csv.Error as error:
        raise DomainError(f"The file is not readable CSV: {error}.", path="file", code="not_csv") from None
    if not any(header):
        raise DomainError("The file is empty: its first line must name the columns.", path="file", code="empty")
    if len(header) > 100:
        raise DomainError("The file has more than 100 columns.", path="file", code="too_wide")
    return ImportJob.objects.create(
        kind=kind,
        file_name=file_name[:255],
        content=text,
        header=header,
        mapping=csv_rows.mapping_guess(kind, header),
        created_by=user if getattr(user, "pk", None) else None,
    )


def import_job_start(*, job: ImportJob, mapping: dict[str, str], user: Any) -> ImportJob:
    """
    Check the mapping (every target a column of the job's kind, none twice, the required ones present), save it
    and queue the import. Errors name the input: `mapping.<file column>` or `mapping`.
    """
    import_permission_check(user=user, kind=job.kind)
    known = set(csv_rows.COLUMNS[job.kind])
    clean: dict[str, str] = {}
    for column in job.header:
        target = str(mapping.get(column, "") or "")
        if target and target not in known:
            raise DomainError(f"“{target}” is not a column of this import.", path=f"mapping.{column}", code="invalid")
        if target and target in clean.values():
            raise DomainError(f"“{target}” is chosen for two columns.", path=f"mapping.{column}", code="invalid")
        clean[column] = target
    missing = [name for name in csv_rows.REQUIRED[job.kind] if name not in clean.values()]
    if missing:
        raise DomainError(f"Choose a column for: {', '.join(missing)}.", path="mapping", code="required")
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.DRAFT).update(
            mapping=clean, status=ImportStatus.QUEUED
        )
        if not claimed:
            raise ConflictError("This import has already been started.", path="", code="started")
        enqueue_on_commit(TASK, job.pk)
    job.refresh_from_db()
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """
    Run a queued import: claim it (a second delivery of the task finds it claimed and does nothing), validate
    every row, write the good ones in batches, record progress after each batch and the rejected rows.
    """
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    job = ImportJob.objects.filter(pk=job_id).first()
    if not claimed or job is None:
        return job

    def progress(done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(progress_done=done, progress_total=total)

    try:
        parsed = csv_rows.csv_read(job.content, kind=job.kind, mapping=job.mapping, max_rows=max_rows())
        if parsed.header_problems:
            raise DomainError("; ".join(parsed.header_problems), path="mapping")
        ImportJob.objects.filter(pk=job_id).update(rows_total=len(parsed.rows))
        outcome = csv_rows.rows_import(
            job.kind, parsed.rows, source_ref=f"import:{job.pk}:{job.file_name}"[:64], progress=progress
        )
    except (DomainError, csv.Error) as error:
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportStatus.FAILED, failure=str(error), finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    # Columns are reported by their name in the file (the marketer's), not ours.
    file_column = {target: column for column, target in job.mapping.items() if target}
    errors = [
        {"line": rejection.line, "column": file_column.get(column.split(".")[0], column), "message": message}
        for rejection in outcome.rejected
        for column, message in rejection.problems
    ]
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.DONE,
        written=outcome.written,
        existing=outcome.existing,
        rejected_count=len(outcome.rejected),
        errors=errors[:ERRORS_KEPT],
        progress_done=outcome.written + outcome.existing,
        progress_total=outcome.valid,
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job
