"""
One exception handler for the whole API. Every error is JSON:

    {"error": "validation_error", "message": "...", "errors": [{"path": "lines[0].quantity", "message": "..."}]}

Django `ValidationError`s raised by services become 400s with the same shape, so a service can name
the field path of what is wrong.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        status_code = status.HTTP_409_CONFLICT if isinstance(exc, ConflictError) else status.HTTP_400_BAD_REQUEST
        return Response(
            {
                "error": exc.code,
                "message": exc.message,
                "errors": [{"path": exc.path, "message": exc.message, "code": exc.code}],
            },
            status=status_code,
        )
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
        response.data = {"error": "validation_error", "message": message or "Invalid input.", "errors": errors}
    else:
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"error": code, "message": str(detail), "errors": []}
    return response
