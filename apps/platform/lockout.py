"""The answer to a locked-out login (django-axes): JSON for API and XHR clients, an admin-styled page otherwise."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

MESSAGE = "Too many failed logins. Try again in {minutes} minutes or ask an administrator to unlock the account."


def _wants_json(request: HttpRequest) -> bool:
    return (
        request.path.startswith("/api/")
        or request.headers.get("x-requested-with") == "XMLHttpRequest"
        or "application/json" in request.headers.get("accept", "")
    )


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    minutes = round(float(settings.AXES_COOLOFF_TIME or 0) * 60)
    message = MESSAGE.format(minutes=minutes)
    if _wants_json(request):
        return JsonResponse({"error": "locked_out", "message": message, "errors": []}, status=429)
    context = {"title": "Login locked", "message": message, "site_header": "Loyalty Site", "has_permission": False}
    return render(request, "platform/lockout.html", context, status=429)
