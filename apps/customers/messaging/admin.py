"""Deliveries in the admin: read-only history (sent, failed, suppressed with the reason, queued)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from loyalty_site.lib.references import reference_link

from .models import Delivery


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
