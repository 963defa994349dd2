"""
The one place that shapes API errors. Every error under `/api/` is JSON:

    {"error": "validation_error", "message": "...", "errors": [{"path": "lines[0].quantity", "message": "..."}]}

- `exception_handler` (DRF's EXCEPTION_HANDLER) translates what a view raises: DRF errors, Django
  `ValidationError`s from services (400 with field paths), `DomainError`s from `loyalty_site.lib.errors`
  (400, `ConflictError` 409), deleting a row that is still referenced (409), a database constraint
  reached anyway (409 for a duplicate, 400 otherwise), a value the database cannot hold (400) and a lost
  or unavailable database (503 with `Retry-After`).
- `page_not_found` / `server_error` (the root URLconf's handler404/handler500) answer JSON for paths
  under `/api/`, including URLs no route matches and exceptions raised outside DRF.
- `ApiBodyLimitMiddleware` refuses an oversized body with 413 before anything reads it.
"""

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from loyalty_site.lib.errors import ConflictError, DomainError


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if key in ("non_field_errors", "__all__"):
        return prefix
    return f"{prefix}.{key}" if prefix else str(key)


def flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF/Django nested error structures into [{path, message, code}] with JSON paths."""
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            out.extend(flatten_errors(value, _join(prefix, key)))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [
                {"path": prefix, "message": str(item), "code": getattr(item, "code", None) or "invalid"}
                for item in detail
            ]
        out = []
        for index, item in enumerate(detail):
            if item in ({}, [], None):
                continue
            out.extend(flatten_errors(item, _join(prefix, index)))
        return out
    return [{"path": prefix, "message": str(detail), "code": getattr(detail, "code", None) or "invalid"}]


def _django_validation_detail(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {key: [str(m) for e in errors for m in e.messages] for key, errors in exc.error_dict.items()}
    return exc.messages


API_PREFIX = "/api/"
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The database is unavailable right now; retry in a few seconds."

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The documented error shape."""
    return {"error": code, "message": message, "errors": errors or []}


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def is_unavailable(exc: BaseException) -> bool:
    """A lost, refused or overloaded database connection (or a deadlock/serialization failure): retry later."""
    return isinstance(exc, (OperationalError, InterfaceError))


def _referenced_by(exc: ProtectedError | RestrictedError) -> str:
    objects = list(exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects)
    counts: dict[str, int] = {}
    for obj in objects:
        name = str(obj._meta.verbose_name_plural)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))


def _integrity_kind(exc: IntegrityError) -> str:
    """ "unique", "foreign_key" or "check" (PostgreSQL's SQLSTATE, else SQLite's message)."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    text = str(exc).upper()
    if sqlstate == "23505" or "UNIQUE CONSTRAINT" in text:
        return "unique"
    if sqlstate == "23503" or "FOREIGN KEY CONSTRAINT" in text:
        return "foreign_key"
    return "check"


def _database_error(exc: DatabaseError) -> Response | None:
    if is_unavailable(exc):
        logger.warning("API request answered 503: %s", exc)
        response = Response(
            error_body("service_unavailable", UNAVAILABLE_MESSAGE), status=status.HTTP_503_SERVICE_UNAVAILABLE
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, IntegrityError):
        # Serializers and services check what they can first; this is the safety net for a rule that
        # only the database knows (or a race), so it is logged.
        logger.warning("API request reached a database constraint: %s", exc)
        kind = _integrity_kind(exc)
        if kind == "unique":
            return Response(
                error_body("already_exists", "A record with these values already exists."),
                status=status.HTTP_409_CONFLICT,
            )
        if kind == "foreign_key":
            return Response(
                error_body("still_referenced", "The record is still referenced by other records."),
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            error_body("constraint_violation", "The values break a rule of the stored data."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DataError):
        logger.warning("API request sent a value the database cannot hold: %s", exc)
        return Response(
            error_body("invalid_value", "A value is out of range or too long for the stored data."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = _domain_response(exc)
    if response is not None:
        set_rollback()  # (as DRF does for its own errors when a request runs in one transaction)
        return response
    return _drf_response(exc, context)


def _domain_response(exc: Exception) -> Response | None:
    if isinstance(exc, DomainError):
        status_code = status.HTTP_409_CONFLICT if isinstance(exc, ConflictError) else status.HTTP_400_BAD_REQUEST
        return Response(
            error_body(exc.code, exc.message, [{"path": exc.path, "message": exc.message, "code": exc.code}]),
            status=status_code,
        )
    if isinstance(exc, (ProtectedError, RestrictedError)):
        message = f"It cannot be deleted while it is still referenced by {_referenced_by(exc)}."
        return Response(
            error_body("still_referenced", message, [{"path": "", "message": message, "code": "still_referenced"}]),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DatabaseError):
        return _database_error(exc)  # None for anything else: Django logs it and `server_error` answers 500
    return None


def _drf_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        message = "; ".join(f"{e['path']}: {e['message']}" if e["path"] else e["message"] for e in errors[:5])
        response.data = error_body("validation_error", message or "Invalid input.", errors)
    else:
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response


# --- Outside DRF: unmatched URLs, exceptions in middleware or non-DRF views, oversized bodies ---------


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: JSON under /api/ (an unknown URL), Django's page elsewhere."""
    if is_api_request(request):
        return JsonResponse(error_body("not_found", "No API endpoint or object at this URL."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON under /api/ (503 + Retry-After when the database is unavailable), Django's page elsewhere."""
    if not is_api_request(request):
        return defaults.server_error(request)
    exc = sys.exc_info()[1]  # Django calls the handler inside its `except` block
    if exc is not None and is_unavailable(exc):
        response = JsonResponse(error_body("service_unavailable", UNAVAILABLE_MESSAGE), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse(error_body("server_error", "An unexpected error occurred; it has been logged."), status=500)


class ApiBodyLimitMiddleware:
    """
    Refuse an API request whose declared body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE with a JSON 413,
    before any parser reads it (DRF's parsers read the stream directly and would not check the limit).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_request(request):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return JsonResponse(error_body("bad_request", "Invalid Content-Length header."), status=400)
            if limit is not None and length > limit:
                message = f"The request body has {length} bytes; the limit is {limit}."
                return JsonResponse(error_body("request_too_large", message), status=413)
        return self.get_response(request)


class ApiNotFoundJsonMiddleware:
    """
    An unknown URL under /api/ answers the JSON 404 even with DEBUG on (`scripts/run`): Django's debug
    mode renders its HTML page without calling handler404, and API clients must always get the documented
    shape. Other pages, and 500s (whose debug page carries the traceback a developer needs), are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and is_api_request(request)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return page_not_found(request)
        return response
