"""Form submissions in the admin (read-only): who signed up through which page, and what confirmation gave."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import FormSubmission


@admin.register(FormSubmission)
class FormSubmissionAdmin(admin.ModelAdmin):
    """Written only by the sign-up services; the admin shows them."""

    list_display = ["created_at", "page", "customer", "status", "confirmed_at", "outcome"]
    list_filter = ["status", "page"]
    search_fields = ["customer__email", "page__slug"]
    list_select_related = ["page", "customer"]
    readonly_fields = [field.name for field in FormSubmission._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
