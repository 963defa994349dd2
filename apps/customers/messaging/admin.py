"""Deliveries in the admin: read-only history (sent, failed, suppressed with the reason, queued)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.platform.audit import AuditedModelAdmin
from loyalty_site.lib.references import reference_link

from .models import Delivery, SendingPolicy


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "channel",
        "purpose",
        "customer",
        "to",
        "subject",
        "status",
        "reason",
        "cause_link",
    ]
    list_filter = ["channel", "purpose", "status", "reason"]
    search_fields = ["to", "subject", "cause", "provider_message_id", "customer__email"]
    list_select_related = ["customer"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Delivery._meta.fields]
    show_full_result_count = False

    @admin.display(description="Cause")
    def cause_link(self, obj: Delivery) -> Any:
        return reference_link(obj.cause) if obj.cause else "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SendingPolicy)
class SendingPolicyAdmin(AuditedModelAdmin, admin.ModelAdmin):
    """The one sending policy row: caps, quiet hours, priority window; every change audited."""

    fieldsets = [
        (
            "Frequency caps (marketing messages per customer; empty = no cap)",
            {
                "fields": [
                    ("email_per_day", "email_per_week"),
                    ("sms_per_day", "sms_per_week"),
                    ("in_app_per_day", "in_app_per_week"),
                    ("any_per_day", "any_per_week"),
                ]
            },
        ),
        (
            "Quiet hours (in the customer's time zone — the customer's Time zone field — else the default)",
            {
                "fields": [
                    ("quiet_hours_start", "quiet_hours_end"),
                    ("quiet_hours_email", "quiet_hours_sms"),
                    "default_time_zone",
                ]
            },
        ),
        ("Workflow priority", {"fields": ["priority_window_minutes"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row, created on first use: open it from the list

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        if self.has_view_or_change_permission(request):
            SendingPolicy.current()  # the row exists before anyone may open it
        return super().changelist_view(request, extra_context)
