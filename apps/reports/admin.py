"""The reports' way in from the admin index: "Reports → Dashboard and reports" shows the dashboard."""

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from . import views
from .models import DailyFigures


@admin.register(DailyFigures)
class ReportsEntryAdmin(admin.ModelAdmin):
    """Not an editor: the rollups are written by the refresh only; the list is the dashboard."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("reports.view_reports")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return views.dashboard(request)
