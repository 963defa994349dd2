"""Thin tagging tasks: take ids, re-fetch, call one service; safe to run twice."""

from .imports import services as import_services


def import_job_run(job_id: int) -> int | None:
    """Run one queued console CSV import (a second delivery finds it claimed and does nothing)."""
    job = import_services.import_job_run(job_id=job_id)
    return job.written if job else None
